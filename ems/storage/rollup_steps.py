"""The statements a rollup computation needs, as values (``Fetch``, ``Upsert``), and the two ways
of running them: ``run_async`` (any back end) and ``run_inline`` (on SQLite's own thread, inside
``Tx.inline``). ``ems.storage.rollups`` writes its sample logic once as a generator of steps."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ems.storage.db import Dialect, InlineTx, Params, Row, Tx

CHUNK = 500
"""Rows per multi-row statement on SQLite (it binds each value as a parameter: at most 32,766)."""
_INLINE_CHUNK = 50


def chunk_rows(tx: Tx) -> int:
    """Rows per statement: SQLite binds each value as a parameter (at most 32,766); PostgreSQL COPYs them."""
    return CHUNK if tx.dialect.name == "sqlite" else 1_000_000


@dataclass(frozen=True, slots=True)
class Fetch:
    """A statement whose rows the step needs."""

    sql: str
    params: Params = ()


@dataclass(frozen=True, slots=True)
class Upsert:
    """A multi-row ``INSERT ... ON CONFLICT DO UPDATE``: adds ``values``, keeps the highest of ``peaks``,
    overwrites ``keep``; answered with the ``returning`` columns of every row written (else nothing)."""

    table: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    rows: Sequence[Params]
    keep: tuple[str, ...] = ()
    peaks: tuple[str, ...] = ()
    returning: tuple[str, ...] = ()

    def sql(self, dialect: Dialect, source: str) -> str:
        greatest = "GREATEST" if dialect.name == "postgresql" else "max"

        def update(c: str) -> str:
            if c in self.keep:
                return f"{c} = excluded.{c}"
            if c in self.peaks:
                return f"{c} = {greatest}({self.table}.{c}, excluded.{c})"
            return f"{c} = {self.table}.{c} + excluded.{c}"

        sql = (
            f"INSERT INTO {self.table} ({', '.join((*self.key, *self.values))}) {source} "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {', '.join(update(c) for c in self.values)}"
        )
        return f"{sql} RETURNING {', '.join(self.returning)}" if self.returning else sql


Step = Fetch | Upsert
_T = TypeVar("_T")
Steps = Generator[Step, list[Row], _T]
"""A computation that needs the database: it yields the statements it needs and is sent back their rows."""


async def run_async(tx: Tx, step: Step) -> list[Row]:
    if isinstance(step, Fetch):
        return await tx.fetchall(step.sql, step.params)
    out: list[Row] = []
    size = chunk_rows(tx)
    for i in range(0, len(step.rows), size):
        with_, source, params = await tx.rows_source(step.table, (*step.key, *step.values), step.rows[i : i + size])
        sql = with_ + step.sql(tx.dialect, source)
        if step.returning:
            out += await tx.fetchall(sql, params)
        else:
            await tx.execute(sql, params)
    return out


def run_inline(tx: InlineTx, step: Step) -> list[Row]:
    if isinstance(step, Fetch):
        return tx.fetchall(step.sql, step.params)
    marks = "VALUES (" + ", ".join("?" for _ in (*step.key, *step.values)) + ")"
    if not step.returning:
        # One prepared statement for every row (SQLite parses a multi-row VALUES list anew each time).
        tx.executemany(step.sql(tx.dialect, marks), step.rows)
        return []
    # RETURNING: a multi-row VALUES list per chunk of _INLINE_CHUNK rows (each size's statement is
    # prepared once and cached by the connection; row by row costs about twice as much).
    width = len(step.key) + len(step.values)
    out: list[Row] = []
    for i in range(0, len(step.rows), _INLINE_CHUNK):
        chunk = step.rows[i : i + _INLINE_CHUNK]
        values = "VALUES " + ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
        out += tx.fetchall(step.sql(tx.dialect, values), [v for row in chunk for v in row])
    return out


async def upsert_adding(
    tx: Tx,
    table: str,
    key: tuple[str, ...],
    values: tuple[str, ...],
    rows: Sequence[Params],
    *,
    keep: tuple[str, ...] = (),
) -> None:
    """Multi-row ``INSERT ... ON CONFLICT DO UPDATE`` adding ``values`` (overwriting ``keep``)."""
    if rows:
        await run_async(tx, Upsert(table, key, values, rows, keep=keep))
