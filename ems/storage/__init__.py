"""Storage: one interface (ems.ports.stores.Storage), two back ends (SQLite, PostgreSQL)."""
