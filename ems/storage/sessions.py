"""Charging sessions (OCPP transactions) and the OCPP 1.6 transaction id sequence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ems.domain.session import ChargingSession, SessionStatus
from ems.errors import NotFound
from ems.storage.db import Database, Row
from ems.storage.rows import build, field_names, insert_sql, select_sql, update_sql, values

_COLUMNS = field_names(ChargingSession)
_UPDATABLE = tuple(c for c in _COLUMNS if c != "id")
_SELECT = select_sql("sessions", _COLUMNS)

TRANSACTION_ID_SEQUENCE = "ocpp16_transaction_id"

_ACTIVE = f"status = '{SessionStatus.ACTIVE.value}'"
"""A literal, not a parameter, so the partial index ``sessions_active_evse`` applies."""


def _session(row: Row) -> ChargingSession:
    return build(ChargingSession, row, {"status": SessionStatus})


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, session: ChargingSession) -> None:
        """Raises ``Conflict`` if the id or (station, transaction id) exists, ``Conflict`` for an unknown station."""
        await self._db.execute(insert_sql("sessions", _COLUMNS), values(session, _COLUMNS))

    async def get(self, session_id: str) -> ChargingSession | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE id = ?", (session_id,))
        return None if row is None else _session(row)

    async def find_by_transaction(self, station_id: str, transaction_id: str) -> ChargingSession | None:
        sql = f"{_SELECT} WHERE station_id = ? AND transaction_id = ?"
        row = await self._db.fetchone(sql, (station_id, transaction_id))
        return None if row is None else _session(row)

    async def active_for_evse(self, station_id: str, evse_id: int) -> ChargingSession | None:
        """The newest active session on the EVSE (a station that lost a StopTransaction may leave two)."""
        row = await self._db.fetchone(
            f"{_SELECT} WHERE station_id = ? AND evse_id = ? AND {_ACTIVE} ORDER BY started_at DESC LIMIT 1",
            (station_id, evse_id),
        )
        return None if row is None else _session(row)

    async def query(
        self,
        *,
        station_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        active_only: bool = False,
        limit: int = 100,
    ) -> list[ChargingSession]:
        """Sessions started in ``[since, until)``, newest first."""
        where: list[str] = []
        params: list[Any] = []
        for condition, value in (("station_id = ?", station_id), ("started_at >= ?", since), ("started_at < ?", until)):
            if value is not None:
                where.append(condition)
                params.append(value)
        if active_only:
            where.append(_ACTIVE)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._db.fetchall(f"{_SELECT}{clause} ORDER BY started_at DESC, id DESC LIMIT ?", (*params, limit))
        return [_session(row) for row in rows]

    async def finished(
        self, *, since: datetime, id_tag: str | None = None, limit: int = 100_000
    ) -> list[ChargingSession]:
        """Completed sessions (with a stop time) started at or after ``since``, newest first (the
        ``SessionHistory`` port: what the departure and energy estimates learn from)."""
        where = [f"status = '{SessionStatus.COMPLETED.value}'", "stopped_at IS NOT NULL", "started_at >= ?"]
        params: list[Any] = [since]
        if id_tag is not None:
            where.append("id_tag = ?")
            params.append(id_tag)
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY started_at DESC, id DESC LIMIT ?"
        rows = await self._db.fetchall(sql, (*params, limit))
        return [_session(row) for row in rows]

    async def update(self, session: ChargingSession) -> None:
        """Replace every field; raises ``NotFound``."""
        params = (*values(session, _UPDATABLE), session.id)
        if await self._db.execute(update_sql("sessions", _COLUMNS, "id"), params) == 0:
            raise NotFound(f"no session {session.id!r}")

    async def next_transaction_id(self) -> int:
        async with self._db.transaction() as tx:
            return await tx.next_value(TRANSACTION_ID_SEQUENCE)
