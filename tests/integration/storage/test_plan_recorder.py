"""The planned load and the capacity in force reach the load curve as plans are made (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ems.clock import FakeClock
from ems.domain.capacity import CapacityInterval
from ems.domain.live import SitePlanView
from ems.services.plan_recorder import PlanRecorder, plan_buckets
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 3, 8, 2, tzinfo=UTC)


def _plan(at: datetime, watts: tuple[float, ...]) -> SitePlanView:
    return SitePlanView(
        site_id="depot",
        planned_at=at,
        status="OPTIMAL",
        algorithm="lp",
        solve_s=0.1,
        start=at.replace(minute=0),
        slot_s=900,
        site_power_w=watts,
        sessions=1,
        fully_served=1,
        unmet_wh=0.0,
        profiles_sent=1,
        profiles_rejected=0,
    )


class _Monitor:
    def __init__(self) -> None:
        self.current: SitePlanView | None = None

    def plan(self, site_id: str) -> SitePlanView | None:
        return self.current


class _Capacity:
    capacity_w = 20_000.0

    def in_force(self, site_id: str, circuit_id: str | None = None) -> CapacityInterval:
        return CapacityInterval(T0, T0 + timedelta(hours=1), self.capacity_w, None)


def test_slots_spread_over_five_minute_buckets() -> None:
    start = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    base = int(start.timestamp())
    assert plan_buckets(start, 900, (3000.0, 6000.0), base) == [
        (base + 300 * i, w) for i, w in enumerate((3000.0, 3000.0, 3000.0, 6000.0, 6000.0, 6000.0))
    ]
    assert plan_buckets(start, 60, (1000.0,) * 5 + (0.0,) * 5, base) == [(base, 1000.0), (base + 300, 0.0)]


async def test_plans_and_capacity_are_recorded_for_the_load_curve(sqlite_storage: SqlStorage) -> None:
    storage = sqlite_storage
    clock = FakeClock(T0)
    monitor, capacity = _Monitor(), _Capacity()
    recorder = PlanRecorder(("depot",), monitor, capacity, storage.rollups, clock)  # type: ignore[arg-type]
    monitor.current = _plan(T0, (11_000.0, 7_000.0))
    await recorder.tick()
    clock.advance(60)
    capacity.capacity_w = 15_000.0
    monitor.current = _plan(T0 + timedelta(minutes=1), (4_000.0, 4_000.0))  # a newer plan wins
    await recorder.tick()
    rows: list[dict[str, Any]] = await storage.analytics.load_curve(
        "depot", datetime(2026, 11, 3, 8, 0, tzinfo=UTC), datetime(2026, 11, 3, 8, 30, tzinfo=UTC), 300
    )
    planned = [(r["start"][11:16], r["planned_w"], r["capacity_w"]) for r in rows]
    assert planned[0] == ("08:00", 4000.0, 15000.0)  # the lowest capacity seen in the bucket
    assert [p[1] for p in planned] == [4000.0] * 6
