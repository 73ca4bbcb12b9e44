"""Storage: one interface (ems.ports.Storage), two back ends (SQLite, PostgreSQL)."""
