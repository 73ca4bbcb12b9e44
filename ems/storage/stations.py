"""Stations and their connector status history."""

from __future__ import annotations

from datetime import datetime

from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, OcppVersion, Station
from ems.errors import Conflict, NotFound
from ems.storage.db import Database
from ems.storage.rollups import writer_for
from ems.storage.rows import build, field_names, insert_sql, select_sql, update_sql, values

_COLUMNS = field_names(Station)
_UPDATABLE = tuple(c for c in _COLUMNS if c != "id")
_STATUS_COLUMNS = field_names(ConnectorStatusRecord)
_SELECT = select_sql("stations", _COLUMNS)


class SqlStationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, station: Station) -> None:
        await self._db.execute(insert_sql("stations", _COLUMNS), values(station, _COLUMNS))

    async def get(self, station_id: str) -> Station | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE id = ?", (station_id,))
        return None if row is None else build(Station, row, {"ocpp_version": OcppVersion})

    async def all(self) -> list[Station]:
        rows = await self._db.fetchall(f"{_SELECT} ORDER BY id")
        return [build(Station, row, {"ocpp_version": OcppVersion}) for row in rows]

    async def update(self, station: Station) -> None:
        params = (*values(station, _UPDATABLE), station.id)
        if await self._db.execute(update_sql("stations", _COLUMNS, "id"), params) == 0:
            raise NotFound(f"no station {station.id!r}")

    async def delete(self, station_id: str) -> bool:
        """Deletes its status history too; raises ``Conflict`` while sessions refer to it."""
        return await self._db.execute("DELETE FROM stations WHERE id = ?", (station_id,)) > 0

    async def mark_seen(self, station_id: str, at: datetime, *, online: bool) -> None:
        sql = "UPDATE stations SET last_seen_at = ?, online = ? WHERE id = ?"
        if await self._db.execute(sql, (at, online, station_id)) == 0:
            raise NotFound(f"no station {station_id!r}")

    async def record_status(self, record: ConnectorStatusRecord) -> None:
        """Stores the change and adds the interval it closes (and, when late, the one it opens) to the rollups."""
        rollups = writer_for(self._db)
        try:
            async with self._db.transaction() as tx:
                await rollups.ensure_partitions(tx, "connector_status_history", (record.at,))
                record_id = await tx.fetchval(
                    f"{insert_sql('connector_status_history', _STATUS_COLUMNS)} RETURNING id",
                    values(record, _STATUS_COLUMNS),
                )
                await rollups.apply_status(
                    tx, record.station_id, record.evse_id, record.connector_id, record.status, record.at, int(record_id)
                )
        except Conflict as error:  # the only constraint here is the station foreign key
            raise NotFound(f"no station {record.station_id!r}") from error

    async def status_history(self, station_id: str, *, limit: int = 100) -> list[ConnectorStatusRecord]:
        rows = await self._db.fetchall(
            f"{select_sql('connector_status_history', _STATUS_COLUMNS)} WHERE station_id = ? "
            "ORDER BY at DESC, id DESC LIMIT ?",
            (station_id, limit),
        )
        return [build(ConnectorStatusRecord, row, {"status": ConnectorStatus}) for row in rows]
