"""Versioned schema migrations for both back ends.

Files live in ``ems/storage/migrations/``, named ``NNNN_name.sql`` (for both back ends,
with ``{{json}}``, ``{{decimal}}``, ``{{identity}}`` and ``{{sequence NAME}}`` expanded
per dialect) and optionally ``NNNN_name.sqlite.sql`` / ``NNNN_name.postgresql.sql``
(run after the shared file, for one back end only). Each version is applied once, in
order, in its own transaction together with its row in ``schema_migrations``; running
``upgrade`` again is a no-op. Reserved numbers: 0001 foundation, 0002 ocpp (quarantine, sample natural key),
0003 grid, 0004 billing, 0008 API key expiry, 0010 web (driver PINs and sessions), 0015 operator accounts
(console), 0020 analytics (rollups, monthly partitions), 0021 analytics views, 0022 ingest (the sample
rollups kept by a PostgreSQL trigger).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources

from ems.storage.db import Database

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)
"""

_LOCK_ID = 0x656D73
"""PostgreSQL advisory lock key ("ems") held while migrating, so two processes starting
together apply each version once; SQLite's BEGIN IMMEDIATE does the same."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    shared: str = ""
    per_dialect: dict[str, str] = field(default_factory=dict)

    def sql_for(self, dialect: str) -> str:
        return f"{self.shared}\n{self.per_dialect.get(dialect, '')}"


def discover(package: str = "ems.storage.migrations") -> list[Migration]:
    """Every migration in ``package``, in version order; raises ``ValueError`` on a misnamed file."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name[.sqlite|.postgresql].sql")
        version, name, dialect = int(match.group(1)), match.group(2), match.group(3)
        current = found.get(version) or Migration(version, name)
        if current.name != name:
            raise ValueError(f"migration {version:04d} has two names: {current.name!r} and {name!r}")
        text = entry.read_text(encoding="utf-8")
        if dialect is None:
            current = Migration(version, name, text, current.per_dialect)
        else:
            current.per_dialect[dialect] = text
        found[version] = current
    return [found[v] for v in sorted(found)]


async def applied_versions(db: Database) -> list[int]:
    async with db.transaction() as tx:
        await tx.execute(_VERSION_TABLE)
        rows = await tx.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [int(r["version"]) for r in rows]


async def upgrade(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every migration not yet applied, each in one transaction; returns the versions applied now."""
    pending = discover() if migrations is None else migrations
    done = set(await applied_versions(db))
    applied: list[int] = []
    for migration in pending:
        if migration.version in done:
            continue
        async with db.transaction() as tx:
            if db.dialect.name == "postgresql":
                await tx.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
            # Re-check under the lock: another process may have applied it meanwhile.
            if await tx.fetchone("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)):
                continue
            await tx.execute_script(db.dialect.render(migration.sql_for(db.dialect.name)))
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC)),
            )
        applied.append(migration.version)
    return applied
