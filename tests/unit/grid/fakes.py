"""Simple implementations of the ports the grid service uses (for unit and integration tests)."""

from __future__ import annotations

from collections.abc import Sequence

from ems.domain.capacity import CapacitySignal, SignalAudit, SiteLoadReading
from ems.domain.units import Phase
from ems.errors import StorageUnavailable


class MemorySignalStore:
    """``CapacitySignalStore`` in a list; ``fail=True`` makes every write raise ``StorageUnavailable``."""

    def __init__(self, *, fail: bool = False) -> None:
        self.rows: list[tuple[CapacitySignal, bool, str | None]] = []
        self.fail = fail
        self.batches: list[int] = []
        self.payloads: list[str | None] = []

    async def add(
        self, signal: CapacitySignal, *, accepted: bool, error: str | None = None, payload: str | None = None
    ) -> int:
        if self.fail:
            raise StorageUnavailable("database is down")
        self.rows.append((signal, accepted, error))
        self.payloads.append(payload)
        return len(self.rows)

    async def add_many(self, records: Sequence[SignalAudit]) -> None:
        if self.fail:
            raise StorageUnavailable("database is down")
        self.batches.append(len(records))
        self.rows.extend((r.signal, r.accepted, r.error) for r in records)
        self.payloads.extend(r.payload for r in records)

    async def for_site(self, site_id: str, *, limit: int = 100) -> list[tuple[CapacitySignal, bool, str | None]]:
        return [(a.signal, a.accepted, a.error) for a in await self.audit(site_id, limit=limit)]

    async def audit(self, site_id: str, *, limit: int = 100) -> list[SignalAudit]:
        records = [SignalAudit(s, ok, err, p) for (s, ok, err), p in zip(self.rows, self.payloads, strict=True)]
        return [r for r in reversed(records) if r.signal.site_id == site_id][:limit]


class FixedSiteLoad:
    """``SiteLoad`` that answers the same reading for every site."""

    def __init__(self, per_phase_w: float = 0.0, sessions: int = 0) -> None:
        self.reading = SiteLoadReading(
            phase_power_w=dict.fromkeys(Phase, per_phase_w),
            phase_current_a=dict.fromkeys(Phase, per_phase_w / 230.0),
            active_sessions=sessions,
        )

    def site_load(self, site_id: str) -> SiteLoadReading:
        return self.reading
