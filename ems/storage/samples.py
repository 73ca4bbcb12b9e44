"""Meter samples: the time series, written in batches (COPY to staging, one INSERT on PostgreSQL), rollups kept up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.errors import InvalidInput
from ems.storage.db import Database, Row
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
        if not samples:
            return
        rollups = writer_for(self._db)
        async with self._db.transaction() as tx:
            await rollups.ensure_partitions(tx, "meter_samples", {s.measured_at for s in samples})
            new = await tx.insert_new("meter_samples", _COLUMNS, [values(s, _COLUMNS) for s in samples])
            await rollups.apply_samples(tx, new, _COLUMNS)

    async def for_session(self, session_id: str) -> list[MeterSample]:
        """Oldest first."""
        rows = await self._db.fetchall(f"{_SELECT} WHERE session_id = ?{_ORDER}", (session_id,))
        return [_sample(row) for row in rows]

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
