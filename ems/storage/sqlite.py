"""SQLite back end: one file, one connection, one dedicated worker thread.

Every blocking ``sqlite3`` call runs on that thread (a single-worker executor, so calls
are serialized in the order they were issued) and never on the event loop. Transactions
are serialized in-process by an ``asyncio.Lock``; across processes (``ems db upgrade``
or ``ems station add`` while a server runs) writers take the database write lock up
front with ``BEGIN IMMEDIATE``, so a read-modify-write cannot interleave, and wait up to
``BUSY_TIMEOUT_S`` for another process's write lock.

Timestamps are stored as ISO-8601 UTC text with microseconds
(``2026-11-21T12:00:00.000000+00:00``): fixed width, so text order is time order, and
``date(col)``/``substr(col, 1, 10)`` group by UTC day.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from ems.errors import Conflict, StorageError, StorageUnavailable
from ems.storage.db import Database, Dialect, InlineTx, Json, Params, Row, Tx

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0
"""How long a writer waits for another process's write lock; a migration or a CLI write
takes milliseconds, so 5 s only runs out when something is stuck."""


def _encode_datetime(value: datetime) -> str:
    if value.tzinfo is UTC:  # the common case, and 3x faster without astimezone()
        return value.isoformat(timespec="microseconds")
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: ems stores timezone-aware UTC only")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _decode_timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    text = value.decode() if isinstance(value, bytes) else str(value)
    return datetime.fromisoformat(text).astimezone(UTC)


def _register_types() -> None:
    # sqlite3 keeps adapters and converters process-wide; registering twice is harmless.
    # Converters apply by declared column type (PARSE_DECLTYPES), so only to ems's columns.
    sqlite3.register_adapter(datetime, _encode_datetime)
    sqlite3.register_adapter(Decimal, str)
    sqlite3.register_adapter(Json, lambda j: json.dumps(j.value, separators=(",", ":")))
    sqlite3.register_converter("TIMESTAMPTZ", _decode_timestamp)
    sqlite3.register_converter("BOOLEAN", lambda b: bool(int(b)))
    sqlite3.register_converter("DECIMAL_TEXT", lambda b: Decimal(b.decode()))
    sqlite3.register_converter("JSON_TEXT", json.loads)
    # Speed only: sqlite3 binds any str subclass, but first probes it for __conform__
    # (~0.7 us per value, two enums per meter sample); an adapter skips the probe.
    for enum_type in _subclasses(StrEnum):
        sqlite3.register_adapter(enum_type, str.__str__)


def _subclasses(cls: type) -> list[type]:
    found: list[type] = cls.__subclasses__()
    return found + [sub for child in found for sub in _subclasses(child)]


SQLITE = Dialect(
    name="sqlite",
    macros={
        "json": "JSON_TEXT",
        "decimal": "DECIMAL_TEXT",
        "identity": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    sequence_ddl="INSERT OR IGNORE INTO ems_sequences (name, value) VALUES ('{name}', 0)",
    for_update="",
    day_utc_sql="substr({col}, 1, 10)",
    timestamp=_decode_timestamp,
)


def _map_error(error: sqlite3.Error, where: str) -> StorageError | Conflict:
    name = getattr(error, "sqlite_errorname", "")
    if isinstance(error, sqlite3.IntegrityError) and name in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
        "SQLITE_CONSTRAINT_FOREIGNKEY",
    ):
        return Conflict(str(error))
    if isinstance(error, sqlite3.OperationalError) and name in ("SQLITE_BUSY", "SQLITE_CANTOPEN", "SQLITE_READONLY"):
        return StorageUnavailable(f"SQLite database {where} is not available: {error}")
    return StorageError(f"SQLite database {where}: {error}")


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: the driver never opens transactions by itself; we BEGIN explicitly.
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES, cached_statements=256
    )
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL in WAL mode: a crash of ems loses nothing; a power cut may lose the last
        # commits but never corrupts the file. FULL would fsync on every commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        # 64 MiB of page cache instead of 2: the indexes of meter_samples and the rollups a batch
        # touches outgrow 2 MiB at a few hundred EVSEs, and every batch then re-reads them
        # (measured once on a busy shared machine: ingest about a third faster at 100 EVSEs, for a
        # raw executemany as for ems; docs/benchmarks/analytics.md).
        conn.execute("PRAGMA cache_size = -65536")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _fetchall(conn: sqlite3.Connection, sql: str, params: Params) -> list[Row]:
    cur = conn.execute(sql, params)
    if cur.description is None:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def _insert_new(conn: sqlite3.Connection, sql: str, rows: Sequence[Params]) -> list[Params]:
    conn.execute("SAVEPOINT ems_insert_new")
    try:
        before = conn.total_changes
        conn.executemany(sql, rows)
        if conn.total_changes - before == len(rows):
            return list(rows)
        # Some were stored already: redo row by row to tell which (rare: replays, resends).
        conn.execute("ROLLBACK TO ems_insert_new")
        return [row for row in rows if conn.execute(sql, row).rowcount == 1]
    except BaseException:
        conn.execute("ROLLBACK TO ems_insert_new")
        raise
    finally:
        conn.execute("RELEASE ems_insert_new")


def _execute_script(conn: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT first; run statement by statement inside our transaction.
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    leftover = "".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
    if leftover.strip() and sqlite3.complete_statement(statement + ";"):
        conn.execute(statement)
    elif leftover.strip():
        raise StorageError(f"incomplete SQL statement at end of script: {statement.strip()[:80]!r}")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _rollback_to_savepoint(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK TO ems_nested")
        conn.execute("RELEASE ems_nested")


def _insert_new_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


class SqliteInlineTx(InlineTx):
    """The connection, on the database thread, inside the open transaction (``SqliteTx.inline``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.dialect = SQLITE
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _fetchall(self._conn, sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows)

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[Params]:
        return _insert_new(self._conn, _insert_new_sql(table, columns), rows) if rows else []


class SqliteTx(Tx):
    inlines = True

    def __init__(self, db: SqliteDatabase) -> None:
        self.dialect = SQLITE
        self._db = db

    async def inline(self, work: Callable[[InlineTx], T]) -> T:
        return await self._db.call(lambda c: work(SqliteInlineTx(c)))

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._db.call(lambda c: c.execute(sql, params).rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._db.call(lambda c: _fetchall(c, sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._db.call(lambda c: c.executemany(sql, rows))

    async def copy_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Params],
        *,
        skip_duplicates: bool = False,
        binary: bool = False,
    ) -> None:
        marks = ", ".join("?" for _ in columns)
        conflict = " ON CONFLICT DO NOTHING" if skip_duplicates else ""
        await self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){conflict}", rows)

    async def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[Params]:
        if not rows:
            return []
        sql = _insert_new_sql(table, columns)
        return await self._db.call(lambda c: _insert_new(c, sql, rows))

    async def next_value(self, sequence: str) -> int:
        sql = "UPDATE ems_sequences SET value = value + 1 WHERE name = ? RETURNING value"
        value = await self.fetchval(sql, (sequence,))
        if value is None:
            raise StorageError(f"no sequence {sequence!r}: create it in a migration with {{{{sequence {sequence}}}}}")
        return int(value)

    async def execute_script(self, sql: str) -> None:
        await self._db.call(lambda c: _execute_script(c, sql))


class SqliteDatabase(Database):
    """Open with ``await SqliteDatabase.open(path)``; close with ``await db.close()``."""

    def __init__(self, path: Path, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self.dialect = SQLITE
        self.url = f"sqlite:///{path}"
        self.path = path
        self._conn = conn
        self._executor = executor
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        """Open (creating) the file; raises ``StorageUnavailable`` with the reason if it cannot."""
        _register_types()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ems-sqlite")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, path)
        except (OSError, sqlite3.Error) as error:
            executor.shutdown(wait=False)
            raise StorageUnavailable(f"cannot open the SQLite database sqlite:///{path}: {error}") from error
        return cls(path, conn, executor)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread, mapping driver errors."""
        conn = self._conn
        if self._closed:
            raise StorageUnavailable(f"SQLite database {self.url} is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, conn)
        except sqlite3.Error as error:
            raise _map_error(error, self.url) from error

    @asynccontextmanager
    async def _begin(self, readonly: bool) -> AsyncIterator[Tx]:
        async with self._lock:
            try:
                # BEGIN inside the try: a caller cancelled while BEGIN waits on the worker thread must
                # still queue the rollback behind it, or the next transaction finds one already open.
                await self.call(lambda c: c.execute("BEGIN" if readonly else "BEGIN IMMEDIATE"))
                yield SqliteTx(self)
                await self.call(lambda c: c.execute("COMMIT"))
            except BaseException:
                # Queued behind any statement still on the worker thread (FIFO), and shielded
                # so that a cancelled caller still leaves the connection outside a transaction.
                await asyncio.shield(self.call(_rollback))
                raise

    @asynccontextmanager
    async def _savepoint(self, tx: Tx) -> AsyncIterator[Tx]:
        # One name for every level: SQLite releases / rolls back to the most recent one.
        await self.call(lambda c: c.execute("SAVEPOINT ems_nested"))
        try:
            yield tx
            await self.call(lambda c: c.execute("RELEASE ems_nested"))
        except BaseException:
            await asyncio.shield(self.call(_rollback_to_savepoint))
            raise

    async def close(self) -> None:
        """Close after the statements already queued (a cancelled transaction's rollback among them)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
