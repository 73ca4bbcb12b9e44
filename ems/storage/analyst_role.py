"""A read-only PostgreSQL role for analysts (``ems db analyst-role NAME``): the analytics views and
the rollup tables, nothing else, never a write (docs/analytics.md)."""

from __future__ import annotations

from ems.errors import InvalidInput
from ems.storage.db import Database

ANALYST_VIEWS = (
    "analytics_evse_5min",
    "analytics_site_load_5min",
    "analytics_station_days",
    "analytics_station_day_fees",
    "analytics_user_months",
    "analytics_meter_samples",
    "analytics_sessions",
)
ANALYST_TABLES = (
    "rollup_evse_5min",
    "rollup_site_5min",
    "rollup_station_day",
    "rollup_station_day_fees",
    "rollup_user_month",
    "analytics_site_plan",
    "analytics_placement",
    "meter_samples",
    "connector_status_history",
    "sessions",
    "stations",
)
"""What a read-only analyst may read: no cards, accounts, ledger or API keys."""


async def create_analyst_role(db: Database, name: str, password: str | None) -> str:
    """A PostgreSQL login role that can read the analytics views and tables and write nothing. Returns the schema."""
    if db.dialect.name != "postgresql":
        raise InvalidInput("analyst roles need PostgreSQL", ["database: SQLite has no roles; copy the file instead"])
    async with db.transaction() as tx:
        schema = str(await tx.fetchval("SELECT current_schema()"))
        exists = await tx.fetchval("SELECT 1 FROM pg_roles WHERE rolname = ?", (name,))
        ident = _quote_ident(name)
        if not exists:
            await tx.execute(f"CREATE ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        if password is not None:
            await tx.execute(f"ALTER ROLE {ident} PASSWORD {_quote_literal(password)}")
        database = str(await tx.fetchval("SELECT current_database()"))
        await tx.execute(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {ident}")
        await tx.execute(f"GRANT USAGE ON SCHEMA {_quote_ident(schema)} TO {ident}")
        await tx.execute(f"ALTER ROLE {ident} SET default_transaction_read_only = on")
        await tx.execute(f"ALTER ROLE {ident} SET search_path = {_quote_ident(schema)}")
        for name_ in (*ANALYST_VIEWS, *ANALYST_TABLES):
            await tx.execute(f"GRANT SELECT ON {_quote_ident(schema)}.{_quote_ident(name_)} TO {ident}")
        # Partitions are read through their parent; nothing else is granted.
    return schema


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
