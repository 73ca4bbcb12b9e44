"""The small async database layer every repository is written against, once for both back ends.

Repositories write SQL with ``?`` positional placeholders and the column types below; the
back ends (``ems.storage.sqlite``, ``ems.storage.postgres``) translate placeholders, adapt
values and map driver errors onto ``ems.errors``::

    async with db.transaction() as tx:
        row = await tx.fetchone("SELECT * FROM stations WHERE id = ?", (station_id,))
        await tx.execute("UPDATE stations SET online = ? WHERE id = ?", (True, station_id))
        await tx.copy_rows("meter_samples", ("station_id", ...), rows)

Values in and out are the same Python types on both back ends:

=====================  ========================  ===============================================
SQL type in DDL        Python                    SQLite storage
=====================  ========================  ===============================================
``TEXT``               ``str`` (``StrEnum`` in)  TEXT
``BIGINT``/``INTEGER`` ``int``                   INTEGER (64-bit: money in minor units is exact)
``DOUBLE PRECISION``   ``float``                 REAL
``BOOLEAN``            ``bool``                  INTEGER 0/1
``TIMESTAMPTZ``        aware ``datetime`` (UTC)  TEXT ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``
``{{decimal}}``        ``Decimal``               TEXT (exact; do arithmetic in Python)
``{{json}}``           ``Json(...)`` in, value   TEXT (JSONB on PostgreSQL)
=====================  ========================  ===============================================

Typed conversion applies to plain column references; an expression over a timestamp
(``max(at)``) comes back as text on SQLite: decode it with ``Dialect.timestamp``.
A naive ``datetime`` is refused (``ValueError``) rather than guessed.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ems.errors import StorageError

Row = dict[str, Any]
"""A result row: column name -> value."""

Params = Sequence[Any]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Json:
    """Wrap a JSON-serialisable value to store it in a ``{{json}}`` column."""

    value: Any


_MACRO = re.compile(r"\{\{\s*(\w+)(?:\s+(\w+))?\s*\}\}")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the back ends, as data: the only SQL a repository may vary on.

    ``macros`` expand ``{{name}}`` in migration files; ``{{sequence NAME}}`` creates a
    sequence read by ``Tx.next_value``. ``for_update`` is appended to a SELECT that
    reads a row it is about to change (PostgreSQL row lock; SQLite already holds the
    database write lock from ``BEGIN IMMEDIATE``).
    """

    name: str
    macros: Mapping[str, str]
    sequence_ddl: str
    """Template with ``{name}``: creates the sequence if it does not exist."""
    for_update: str
    day_utc_sql: str
    """Template with ``{col}``: the UTC calendar day of a timestamp column as ``'YYYY-MM-DD'`` text."""
    timestamp: Callable[[Any], datetime | None]
    """Decode a timestamp that came back from an expression rather than a typed column."""

    def render(self, sql: str) -> str:
        """Expand ``{{macro}}`` and ``{{sequence NAME}}`` in migration SQL; unknown macros are errors."""

        def expand(match: re.Match[str]) -> str:
            macro, arg = match.group(1), match.group(2)
            if macro == "sequence" and arg:
                return self.sequence_ddl.format(name=arg)
            if macro in self.macros and arg is None:
                return self.macros[macro]
            raise ValueError(f"unknown migration macro {match.group(0)!r}")

        return _MACRO.sub(expand, sql)

    def day_utc(self, col: str) -> str:
        return self.day_utc_sql.format(col=col)


class InlineTx(ABC):
    """An open transaction as seen from the database's own thread (``Tx.inline``): blocking calls,
    the same SQL and values as ``Tx``."""

    dialect: Dialect

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[Params]:
        """As ``Tx.insert_new``."""


class Tx(ABC):
    """One open transaction. Every method raises ``Conflict`` on a unique or foreign-key
    violation and ``StorageUnavailable`` when the database went away."""

    dialect: Dialect

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or ``None`` without rows."""
        row = await self.fetchone(sql, params)
        return None if row is None else next(iter(row.values()))

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    async def copy_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Params],
        *,
        skip_duplicates: bool = False,
        binary: bool = False,
    ) -> None:
        """Bulk insert (COPY on PostgreSQL, ``executemany`` on SQLite). ``table`` and ``columns`` are trusted names.

        ``binary``: PostgreSQL's binary COPY format (the server parses less: about a quarter faster for
        meter samples); every value must be of its column's type exactly (an ``int`` for an INTEGER,
        an aware ``datetime`` for a TIMESTAMPTZ: a naive one is not refused here).

        ``skip_duplicates``: a row that collides with a unique key already stored (or earlier in
        ``rows``) is left out, not an error (``ON CONFLICT DO NOTHING``; on PostgreSQL the rows
        are COPied into a temporary table first, since COPY itself has no ON CONFLICT).
        """

    @abstractmethod
    async def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[Params]:
        """Insert ``rows`` skipping those whose unique key is stored already (or earlier in ``rows``);
        returns the rows inserted now (``rows``' own tuples when all were new or on SQLite, else the stored
        values on PostgreSQL).

        PostgreSQL: COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT
        DO NOTHING RETURNING``. SQLite: one ``executemany``; only when it inserted fewer rows than
        given is it rolled back (to a savepoint) and redone row by row to tell which were new.
        """

    async def rows_source(
        self, table: str, columns: Sequence[str], rows: Sequence[Params]
    ) -> tuple[str, str, list[Any]]:
        """``rows`` as a source for one statement writing ``table``: ``(with_clause, select, params)``,
        used as ``with_clause + "INSERT INTO table (...) " + select``. Here a ``VALUES`` list with a
        parameter per value; PostgreSQL COPies the rows into a staging table the statement empties."""
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        return "", "VALUES " + ", ".join(marks for _ in rows), [v for row in rows for v in row]

    inlines = False
    """Whether ``inline`` runs work on the database's own thread (SQLite); else it is not available."""

    async def inline(self, work: Callable[[InlineTx], T]) -> T:
        """Run ``work`` on the database's own thread, in this transaction: many statements for one
        hand-over (SQLite, whose calls each cost a thread switch otherwise). Check ``inlines`` first."""
        raise NotImplementedError(f"{self.dialect.name} runs no work inline")

    @abstractmethod
    async def next_value(self, sequence: str) -> int:
        """Next value of a sequence created with ``{{sequence NAME}}``: unique, increasing, never reused."""

    @abstractmethod
    async def execute_script(self, sql: str) -> None:
        """Several statements without parameters (migrations)."""


class Database(ABC):
    """A connection (SQLite) or pool (PostgreSQL) to one database.

    Transactions nest: inside ``async with db.transaction()``, every store call and every
    further ``db.transaction()`` in the same task joins it as a savepoint. So a caller can
    make several store calls atomic (one API request, a session stop with its ledger
    entry), and a failed inner block rolls back only itself.
    """

    dialect: Dialect
    url: str
    """Where it is, without a password (for messages)."""

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        """Commit when the block ends normally, roll back when it raises (or is cancelled).

        Nested in an open transaction of the same task: a savepoint, released at the end of
        the block or rolled back to if it raises. From a task started inside a transaction:
        ``StorageError`` (on SQLite it would wait forever for its parent's lock).
        """
        outer = _OPEN.get()
        if outer is not None and outer.db is self:
            if outer.task is not asyncio.current_task():
                raise StorageError("a transaction is open in the task that started this one: pass work back to it")
            async with self._savepoint(outer.tx) as tx:
                yield tx
            return
        async with self._begin(readonly) as tx:
            token = _OPEN.set(_Open(self, tx, asyncio.current_task()))
            try:
                yield tx
            finally:
                _OPEN.reset(token)

    @abstractmethod
    def _begin(self, readonly: bool) -> AbstractAsyncContextManager[Tx]:
        """A new top-level transaction."""

    @abstractmethod
    def _savepoint(self, tx: Tx) -> AbstractAsyncContextManager[Tx]:
        """A savepoint inside ``tx``."""

    @abstractmethod
    async def close(self) -> None: ...

    async def health(self) -> None:
        """Raises ``StorageUnavailable`` unless a trivial query answers."""
        async with self.transaction(readonly=True) as tx:
            await tx.fetchval("SELECT 1")

    # One-statement shortcuts: each in its own transaction, or a savepoint of the open one.

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self.transaction(readonly=True) as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self.transaction(readonly=True) as tx:
            return await tx.fetchone(sql, params)


@dataclass(frozen=True, slots=True)
class _Open:
    db: Database
    tx: Tx
    task: asyncio.Task[Any] | None


_OPEN: ContextVar[_Open | None] = ContextVar("ems_open_transaction", default=None)


_SECRET_PARAMS = ("password", "passwd", "secret", "sslkey", "token", "key")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print (even when malformed).

    Both places a libpq URL can carry one: ``user:password@host`` and query parameters
    (``?password=...``, ``sslpassword=...``; any parameter whose name mentions a secret)."""
    parts = original = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostport}")
    if parts.query:
        pairs = [p.partition("=") for p in parts.query.split("&")]
        query = "&".join(
            f"{k}{eq}***" if eq and any(word in k.lower() for word in _SECRET_PARAMS) else f"{k}{eq}{v}"
            for k, eq, v in pairs
        )
        parts = parts._replace(query=query)
    return url if parts == original else urlunsplit(parts)
