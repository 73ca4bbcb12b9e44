"""Meter samples: the time series, written in batches (one COPY on PostgreSQL), rollups kept up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.errors import Conflict, InvalidInput
from ems.storage.db import Database, InlineTx, Row
from ems.storage.rollups import writer_for
from ems.storage.rows import build, field_names, select_sql, values

_COLUMNS = field_names(MeterSample)
_SELECT = select_sql("meter_samples", _COLUMNS)
_ORDER = " ORDER BY measured_at, evse_id, measurand, phase"


def _sample(row: Row) -> MeterSample:
    return build(MeterSample, row, {"measurand": Measurand, "context": ReadingContext})


class SqlMeterSampleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, samples: Sequence[MeterSample]) -> None:
        """All or nothing, in one transaction. Raises ``InvalidInput`` for a NaN value (SQLite cannot store one).

        Each sample is stored once: a sample whose natural key (station, EVSE, time, measurand, phase,
        context, raw value: migration 0002) is stored already is skipped, so replaying a journal
        batch after a crash, or a station resending meter values, adds nothing. The samples stored now
        (and only those) are added to the rollups in the same transaction (``ems.storage.rollups``).
        """
        bad = [i for i, s in enumerate(samples) if math.isnan(s.value)]
        if bad:
            raise InvalidInput("meter samples with NaN values", [f"sample {i}: value is NaN" for i in bad[:10]])
        naive = next((s.measured_at for s in samples if s.measured_at.tzinfo is None), None)
        if naive is not None:  # as the database layer refuses one (the binary COPY below would not)
            raise ValueError(f"naive datetime {naive.isoformat()} refused: ems stores timezone-aware UTC only")
        if not samples:
            return
        rollups = writer_for(self._db)
        rows = [values(s, _COLUMNS) for s in samples]
        async with self._db.transaction() as tx:
            await rollups.ensure_partitions(tx, "meter_samples", {s.measured_at for s in samples})
            if await rollups.rolled_up_by_database(tx):
                # PostgreSQL: the rollup trigger (migration 0022) sees exactly the rows a statement
                # stored. COPY straight into the table; only a batch holding a stored natural key (a
                # replay, a resend) takes the slower path that skips those rows.
                try:
                    async with self._db.transaction() as savepoint:
                        await savepoint.copy_rows("meter_samples", _COLUMNS, rows, binary=True)
                except Conflict:
                    await tx.copy_rows("meter_samples", _COLUMNS, rows, skip_duplicates=True)
                return
            if tx.inlines:
                # SQLite: the insert and every rollup statement in one hand-over to the database thread.
                def store(inline: InlineTx) -> None:
                    rollups.apply_samples_inline(inline, inline.insert_new("meter_samples", _COLUMNS, rows), _COLUMNS)

                await tx.inline(store)
                return
            new = await tx.insert_new("meter_samples", _COLUMNS, rows)
            await rollups.apply_samples(tx, new, _COLUMNS)

    async def for_session(self, session_id: str) -> list[MeterSample]:
        """Oldest first."""
        rows = await self._db.fetchall(f"{_SELECT} WHERE session_id = ?{_ORDER}", (session_id,))
        return [_sample(row) for row in rows]

    async def count(self) -> int:
        rows = await self._db.fetchall("SELECT count(*) AS n FROM meter_samples")
        return int(rows[0]["n"])

    async def for_station(
        self, station_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 10_000
    ) -> list[MeterSample]:
        """Samples measured in ``[since, until)``, oldest first, at most ``limit``."""
        sql = f"{_SELECT} WHERE station_id = ?"
        params: list[Any] = [station_id]
        if since is not None:
            sql += " AND measured_at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND measured_at < ?"
            params.append(until)
        rows = await self._db.fetchall(f"{sql}{_ORDER} LIMIT ?", (*params, limit))
        return [_sample(row) for row in rows]
