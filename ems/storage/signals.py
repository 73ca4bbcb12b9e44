"""Capacity signals: every one received, accepted or not, for audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ems.domain.capacity import (
    MAX_AUDIT_PAYLOAD_CHARS,
    CapacityBlock,
    CapacitySignal,
    CapacityUnit,
    SignalAudit,
    SignalKind,
    SignalSource,
)
from ems.domain.units import Phase
from ems.storage.db import Database, Json, Row


def _blocks_json(blocks: tuple[CapacityBlock, ...]) -> Json:
    return Json(
        [
            {
                "start": b.start.astimezone(UTC).isoformat(),
                "end": b.end.astimezone(UTC).isoformat(),
                "capacity": b.capacity,
                "unit": b.unit.value,
                "phase": None if b.phase is None else b.phase.value,
            }
            for b in blocks
        ]
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _block(item: dict[str, Any]) -> CapacityBlock:
    return CapacityBlock(
        start=_utc(item["start"]),
        end=_utc(item["end"]),
        capacity=float(item["capacity"]),
        unit=CapacityUnit(item["unit"]),
        phase=None if item["phase"] is None else Phase(item["phase"]),
    )


_INSERT = (
    "INSERT INTO capacity_signals (site_id, circuit_id, kind, blocks, received_at, message_id, source,"
    " accepted, error, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "site_id, circuit_id, kind, blocks, received_at, message_id, source, accepted, error"


def _params(signal: CapacitySignal, accepted: bool, error: str | None, payload: str | None) -> tuple[Any, ...]:
    return (
        signal.site_id,
        signal.circuit_id,
        signal.kind,
        _blocks_json(signal.blocks),
        signal.received_at,
        signal.message_id,
        signal.source,
        accepted,
        error,
        None if payload is None else payload[:MAX_AUDIT_PAYLOAD_CHARS],
    )


class SqlCapacitySignalStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, signal: CapacitySignal, *, accepted: bool, error: str | None = None, payload: str | None = None
    ) -> int:
        async with self._db.transaction() as tx:
            new_id = await tx.fetchval(_INSERT + " RETURNING id", _params(signal, accepted, error, payload))
        return int(new_id)

    async def add_many(self, records: Sequence[SignalAudit]) -> None:
        """A batch in one transaction: the grid service's audit writer."""
        if not records:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(_INSERT, [_params(r.signal, r.accepted, r.error, r.payload) for r in records])

    async def for_site(self, site_id: str, *, limit: int = 100) -> list[tuple[CapacitySignal, bool, str | None]]:
        return [(a.signal, a.accepted, a.error) for a in await self.audit(site_id, limit=limit)]

    async def audit(self, site_id: str, *, limit: int = 100) -> list[SignalAudit]:
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS}, payload FROM capacity_signals WHERE site_id = ?"
            " ORDER BY received_at DESC, id DESC LIMIT ?",
            (site_id, limit),
        )
        return [SignalAudit(_signal(row), bool(row["accepted"]), row["error"], row["payload"]) for row in rows]


def _signal(row: Row) -> CapacitySignal:
    return CapacitySignal(
        site_id=row["site_id"],
        kind=SignalKind(row["kind"]),
        blocks=tuple(_block(item) for item in row["blocks"]),
        received_at=row["received_at"],
        circuit_id=row["circuit_id"],
        message_id=row["message_id"],
        source=SignalSource(row["source"]),
    )
