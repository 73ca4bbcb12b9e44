"""The database layer itself: typed round trips, placeholders, transactions, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.config import Settings
from ems.domain.card import Card
from ems.domain.station import Station
from ems.errors import Conflict, StorageError, StorageUnavailable
from ems.storage.db import Json
from ems.storage.factory import SqlStorage, open_storage
from ems.storage.sqlite import SqliteDatabase
from tests.examples import examples

SCRATCH = """
CREATE TABLE scratch (
    id {{identity}},
    name TEXT UNIQUE,
    at TIMESTAMPTZ,
    flag BOOLEAN,
    cents BIGINT,
    amount {{decimal}},
    x DOUBLE PRECISION,
    doc {{json}}
)
"""


async def _scratch(storage: SqlStorage) -> None:
    async with storage.db.transaction() as tx:
        await tx.execute_script(tx.dialect.render(SCRATCH))


async def test_types_round_trip_exactly(storage: SqlStorage) -> None:
    await _scratch(storage)
    at = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    cents = 9_223_372_036_854_775_807  # BIGINT max: money in minor units must never round
    amount = Decimal("12345678901234567890.123456789")
    doc = {"a": [1, 2.5, None, "x"], "b": {"c": True}}
    await storage.db.execute(
        "INSERT INTO scratch (name, at, flag, cents, amount, x, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("n", at, True, cents, amount, 0.1, Json(doc)),
    )
    row = await storage.db.fetchone("SELECT name, at, flag, cents, amount, x, doc FROM scratch")
    assert row == {"name": "n", "at": at, "flag": True, "cents": cents, "amount": amount, "x": 0.1, "doc": doc}
    assert row["at"].utcoffset() == timedelta(0)
    assert type(row["flag"]) is bool
    assert type(row["amount"]) is Decimal


async def test_naive_datetime_is_refused(storage: SqlStorage) -> None:
    await _scratch(storage)
    with pytest.raises(ValueError, match="naive"):
        await storage.db.execute("INSERT INTO scratch (at) VALUES (?)", (datetime(2026, 1, 1),))  # noqa: DTZ001


async def test_placeholders_and_literals(storage: SqlStorage) -> None:
    row = await storage.db.fetchone("SELECT '100%' AS pct, 'why?' AS q, ? AS v", ("a?%",))
    assert row == {"pct": "100%", "q": "why?", "v": "a?%"}


_literals = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(literal=_literals, value=_literals)
async def test_property_text_with_marks_and_percents_survives(storage: SqlStorage, literal: str, value: str) -> None:
    quoted = "'" + literal.replace("'", "''") + "'"
    row = await storage.db.fetchone(f"SELECT {quoted} AS l, ? AS v, '?%' AS m", (value,))
    assert row == {"l": literal, "v": value, "m": "?%"}


async def test_timestamps_sort_and_group_by_utc_day(storage: SqlStorage) -> None:
    await _scratch(storage)
    base = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    times = [base + timedelta(minutes=m) for m in (90, 0, 59, 61, 30)]
    await storage.db.execute("INSERT INTO scratch (at) VALUES (?), (?), (?), (?), (?)", tuple(times))
    rows = await storage.db.fetchall("SELECT at FROM scratch ORDER BY at")
    assert [r["at"] for r in rows] == sorted(times)
    day = storage.db.dialect.day_utc("at")
    grouped = await storage.db.fetchall(f"SELECT {day} AS day, count(*) AS n FROM scratch GROUP BY {day} ORDER BY 1")
    assert grouped == [{"day": "2026-01-01", "n": 3}, {"day": "2026-01-02", "n": 2}]
    latest = await storage.db.fetchone("SELECT max(at) AS m FROM scratch")
    assert latest is not None
    assert storage.db.dialect.timestamp(latest["m"]) == max(times)


async def test_transaction_rolls_back_on_error(storage: SqlStorage) -> None:
    await _scratch(storage)
    with pytest.raises(RuntimeError):
        async with storage.db.transaction() as tx:
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("gone",))
            raise RuntimeError("boom")
    assert await storage.db.fetchall("SELECT name FROM scratch") == []


async def test_unique_violation_is_conflict_and_rolls_back(storage: SqlStorage) -> None:
    await _scratch(storage)
    await storage.db.execute("INSERT INTO scratch (name) VALUES (?)", ("a",))
    with pytest.raises(Conflict):
        async with storage.db.transaction() as tx:
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("b",))
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("a",))
    assert await storage.db.fetchall("SELECT name FROM scratch ORDER BY name") == [{"name": "a"}]


async def test_copy_rows_and_executemany(storage: SqlStorage) -> None:
    await _scratch(storage)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    async with storage.db.transaction() as tx:
        columns = ("name", "at", "flag", "amount", "doc")
        await tx.copy_rows("scratch", columns, [("c1", at, False, Decimal("1.5"), Json([1]))])
        await tx.executemany("INSERT INTO scratch (name, cents) VALUES (?, ?)", [("e1", 1), ("e2", -(2**63))])
    rows = await storage.db.fetchall("SELECT name, at, flag, cents, amount, doc FROM scratch ORDER BY name")
    assert rows == [
        {"name": "c1", "at": at, "flag": False, "cents": None, "amount": Decimal("1.5"), "doc": [1]},
        {"name": "e1", "at": None, "flag": None, "cents": 1, "amount": None, "doc": None},
        {"name": "e2", "at": None, "flag": None, "cents": -(2**63), "amount": None, "doc": None},
    ]


async def test_health_and_backend(storage: SqlStorage) -> None:
    await storage.health()
    assert storage.backend in ("sqlite", "postgresql")


async def test_store_calls_join_an_open_transaction(storage: SqlStorage) -> None:
    """Several store calls made atomic by the caller: a failure writes nothing."""
    await storage.stations.add(Station(id="taken"))
    with pytest.raises(Conflict):
        async with storage.db.transaction():
            await storage.cards.add(Card(uid="c1"))
            assert await storage.cards.get("c1") == Card(uid="c1")  # visible inside
            await storage.stations.add(Station(id="taken"))
    assert await storage.cards.get("c1") is None

    async with storage.transaction():  # the port's unit of work: the same thing
        await storage.cards.add(Card(uid="c2"))
        await storage.stations.add(Station(id="fresh"))
    assert await storage.cards.get("c2") == Card(uid="c2")
    assert await storage.stations.get("fresh") == Station(id="fresh")


async def test_failed_inner_block_rolls_back_only_itself(storage: SqlStorage) -> None:
    await _scratch(storage)
    async with storage.db.transaction() as tx:
        await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("outer",))
        with pytest.raises(Conflict):
            async with storage.db.transaction() as inner:
                await inner.execute("INSERT INTO scratch (name) VALUES (?)", ("inner",))
                await inner.execute("INSERT INTO scratch (name) VALUES (?)", ("outer",))
        # The outer transaction is still usable (on PostgreSQL too: the savepoint absorbed the error).
        await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("after",))
    assert await storage.db.fetchall("SELECT name FROM scratch ORDER BY name") == [{"name": "after"}, {"name": "outer"}]


async def test_transaction_from_a_child_task_is_refused_not_deadlocked(storage: SqlStorage) -> None:
    async with storage.db.transaction():
        child = asyncio.create_task(storage.db.fetchone("SELECT 1 AS one"))
        with pytest.raises(StorageError, match="task"):
            await asyncio.wait_for(child, 5.0)
    assert await storage.db.fetchone("SELECT 1 AS one") == {"one": 1}


async def test_cancelled_transaction_rolls_back(storage: SqlStorage) -> None:
    await _scratch(storage)
    entered = asyncio.Event()

    async def writer() -> None:
        async with storage.db.transaction() as tx:
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("cancelled",))
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    await asyncio.wait_for(entered.wait(), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await storage.db.fetchall("SELECT name FROM scratch") == []
    await storage.db.execute("INSERT INTO scratch (name) VALUES (?)", ("after",))
    assert await storage.db.fetchall("SELECT name FROM scratch") == [{"name": "after"}]


async def test_closed_storage_is_unavailable(tmp_path: Path, pg_schema_url: str) -> None:
    for url in (None, pg_schema_url):
        storage = await open_storage(Settings(database_url=url, data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
        await storage.close()
        await storage.close()  # idempotent
        with pytest.raises(StorageUnavailable):
            await storage.stations.get("x")


async def test_sqlite_caller_cancelled_during_begin_leaves_no_transaction_open(sqlite_storage: SqlStorage) -> None:
    db = sqlite_storage.db
    assert isinstance(db, SqliteDatabase)
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer: our BEGIN IMMEDIATE now waits in the worker thread

    async def write() -> None:
        async with db.transaction() as tx:
            await tx.execute("SELECT 1")

    victim = asyncio.create_task(write())
    await asyncio.sleep(0.2)  # the victim's BEGIN is running, blocked on the other writer's lock
    victim.cancel()
    other.execute("COMMIT")  # the victim's BEGIN now succeeds on the worker thread, after its caller left
    other.close()
    await asyncio.gather(victim, return_exceptions=True)
    async with db.transaction() as tx:  # without the fix: "cannot start a transaction within a transaction"
        assert await tx.fetchval("SELECT 1") == 1
