from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from ems.config import Settings
from ems.domain.station import Station
from ems.errors import ConfigError, StorageUnavailable
from ems.storage.factory import SqlStorage, open_storage

# A refused TCP connection fails at once; 10 s only bounds a hang (libpq's own timeout is 5 s).
BOUND_S = 10.0


async def test_unreachable_postgres_is_unavailable_fast() -> None:
    settings = Settings(database_url="postgresql://ems:s3cret@127.0.0.1:1/ems")
    with pytest.raises(StorageUnavailable) as caught:
        await asyncio.wait_for(open_storage(settings), BOUND_S)
    message = str(caught.value)
    assert "postgresql://ems:***@127.0.0.1:1/ems" in message
    assert "s3cret" not in message
    assert "\n" not in message


async def test_missing_postgres_database_is_unavailable(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/ems_no_such_database"
    with pytest.raises(StorageUnavailable, match=r"ems_no_such_database.*does not exist"):
        await asyncio.wait_for(open_storage(Settings(database_url=url)), BOUND_S)


async def test_malformed_postgres_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid PostgreSQL URL"):
        await open_storage(Settings(database_url="postgresql://h/db?no_such_option=1"))


async def test_unwritable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = Settings(database_url=None, data_dir=blocker / "data")
    with pytest.raises(StorageUnavailable, match="a-file"):
        await open_storage(settings)


async def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageUnavailable, match=r"junk\.db"):
        await open_storage(Settings(database_url=f"sqlite:///{path}"))


async def test_pool_replaces_a_connection_the_server_dropped(pg_storage: SqlStorage, pg_url: str) -> None:
    row = await pg_storage.db.fetchone("SELECT pg_backend_pid() AS pid")
    assert row is not None
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        # The 5000 ms form waits until the backend has really exited (PostgreSQL >= 14).
        await admin.execute("SELECT pg_terminate_backend(%s, 5000)", (row["pid"],))
    await pg_storage.health()
    await pg_storage.stations.add(Station(id="after-restart"))
    assert await pg_storage.stations.get("after-restart") == Station(id="after-restart")
