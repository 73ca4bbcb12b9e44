"""Build the storage from settings: open the database, run migrations, wire the stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ems.config import Settings
from ems.storage.analytics import SqlAnalytics
from ems.storage.api_keys import SqlApiKeyStore
from ems.storage.billing import SqlBillingStores
from ems.storage.cards import SqlCardStore
from ems.storage.db import Database
from ems.storage.migrate import upgrade
from ems.storage.operators import SqlOperatorStore
from ems.storage.postgres import PostgresDatabase
from ems.storage.quarantine import SqlQuarantineStore
from ems.storage.rollups import writer_for
from ems.storage.samples import SqlMeterSampleStore
from ems.storage.sessions import SqlSessionStore
from ems.storage.signals import SqlCapacitySignalStore
from ems.storage.sqlite import SqliteDatabase
from ems.storage.stations import SqlStationStore
from ems.storage.web import SqlDriverAuthStore


class SqlStorage:
    """Every store over one ``Database`` (implements ``ems.ports.stores.Storage``).

    ``db`` is public so that a feature's own repositories (``ems/storage/<feature>.py``)
    can be built over the same database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.stations = SqlStationStore(db)
        self.cards = SqlCardStore(db)
        self.sessions = SqlSessionStore(db)
        self.samples = SqlMeterSampleStore(db)
        self.signals = SqlCapacitySignalStore(db)
        self.api_keys = SqlApiKeyStore(db)
        self.billing = SqlBillingStores(db)
        self.quarantine = SqlQuarantineStore(db)
        self.operators = SqlOperatorStore(db)
        self.driver_auth = SqlDriverAuthStore(db)
        self.rollups = writer_for(db)
        self.analytics = SqlAnalytics(db)

    @property
    def backend(self) -> str:
        return self.db.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One transaction around every store call in the block (see ``Database.transaction``)."""
        async with self.db.transaction():
            yield

    async def health(self) -> None:
        await self.db.health()

    async def close(self) -> None:
        await self.db.close()


async def open_database(settings: Settings, *, schema: str | None = None) -> Database:
    """Connect to ``settings.database_url`` (PostgreSQL) or open the SQLite file; raises ``StorageUnavailable``."""
    if settings.is_postgres:
        assert settings.database_url is not None
        return await PostgresDatabase.open(settings.database_url, schema=schema)
    return await SqliteDatabase.open(settings.sqlite_path)


async def open_storage(settings: Settings, *, schema: str | None = None, migrate: bool = True) -> SqlStorage:
    """Open the database and bring its schema up to date; close with ``close_storage``.

    ``schema`` (PostgreSQL only) is created if missing and put first on the search path.
    """
    db = await open_database(settings, schema=schema)
    try:
        if migrate:
            await upgrade(db)
    except BaseException:
        await db.close()
        raise
    return SqlStorage(db)


async def close_storage(storage: SqlStorage) -> None:
    await storage.close()
