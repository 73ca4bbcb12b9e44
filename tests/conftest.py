"""Fixtures shared by every test package.

Storage: ``storage`` runs a test on both back ends (``sqlite`` in ``tmp_path`` and
``postgresql`` in a fresh schema of the real server, dropped afterwards). The lower-level
fixtures are for tests that need one back end or a URL of their own::

    pg_url          the server (EMS_TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test)
    pg_schema_url   a URL whose search_path is a fresh, empty schema (dropped after the test)
    sqlite_storage  migrated SqlStorage on a file in tmp_path
    pg_storage      migrated SqlStorage in its own schema
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from ems.config import Settings
from ems.storage.factory import SqlStorage, open_storage

PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url() -> str:
    return os.environ.get("EMS_TEST_DATABASE_URL") or PG_DEFAULT_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` with libpq ``options=-c search_path=<schema>`` added to its query."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-c search_path={schema}", safe="")
    return urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query else option))


@pytest.fixture
async def pg_schema_url(pg_url: str) -> AsyncIterator[str]:
    schema = f"test_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_search_path(pg_url, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    storage = await open_storage(Settings(database_url=None, data_dir=tmp_path / "data", _env_file=None))  # type: ignore[call-arg]
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def pg_storage(pg_schema_url: str) -> AsyncIterator[SqlStorage]:
    storage = await open_storage(Settings(database_url=pg_schema_url, _env_file=None))  # type: ignore[call-arg]
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest) -> SqlStorage:
    """A migrated, empty storage on each back end in turn."""
    name = "sqlite_storage" if request.param == "sqlite" else "pg_storage"
    result: SqlStorage = request.getfixturevalue(name)
    return result
