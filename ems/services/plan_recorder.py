"""Records the controller's plans as they are made, and the capacity in force, for the load curve.

Every ``interval_s`` it looks at each site's plan in force; a plan it has not recorded yet is
written per 5-minute bucket from the current one on (a slot longer than 5 minutes fills several
buckets; shorter slots are averaged). The capacity in force now is recorded for the current bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from ems.clock import Clock
from ems.ports.analytics import PlanLog
from ems.ports.grid import CapacitySignals
from ems.ports.monitor import SiteMonitor

log = logging.getLogger(__name__)

BUCKET_S = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_of(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(seconds=BUCKET_S) * BUCKET_S


def plan_buckets(start: datetime, slot_s: int, power_w: tuple[float, ...], since_s: int) -> list[tuple[int, float]]:
    """Mean planned power per 5-minute bucket (time-weighted over the slots it overlaps), from ``since_s`` on."""
    weighted: dict[int, float] = {}
    start_s = (start - _EPOCH).total_seconds()
    for i, watts in enumerate(power_w):
        lo, hi = start_s + i * slot_s, start_s + (i + 1) * slot_s
        bucket = int(lo // BUCKET_S * BUCKET_S)
        while bucket < hi:
            overlap = min(hi, bucket + BUCKET_S) - max(lo, bucket)
            if overlap > 0:
                weighted[bucket] = weighted.get(bucket, 0.0) + watts * overlap / BUCKET_S
            bucket += BUCKET_S
    return [(b, w) for b, w in sorted(weighted.items()) if b >= since_s]


class PlanRecorder:
    name = "plan-recorder"
    restartable = True
    """It only reads the controller's state and upserts what it sees: restarting repeats nothing wrong."""

    def __init__(
        self,
        sites: tuple[str, ...],
        monitor: SiteMonitor,
        capacity: CapacitySignals | None,
        log_to: PlanLog,
        clock: Clock,
        interval_s: float = 60.0,
    ) -> None:
        self._sites = sites
        self._monitor = monitor
        self._capacity = capacity
        self._log = log_to
        self._clock = clock
        self._interval_s = interval_s
        self._recorded: dict[str, datetime] = {}

    async def tick(self) -> None:
        now = self._clock.now()
        current = bucket_of(now)
        for site_id in self._sites:
            plan = self._monitor.plan(site_id)
            if plan is not None and plan.site_power_w and self._recorded.get(site_id) != plan.planned_at:
                buckets = plan_buckets(plan.start, plan.slot_s, plan.site_power_w, current)
                await self._log.record_plan(site_id, buckets, now)
                self._recorded[site_id] = plan.planned_at
            if self._capacity is not None:
                interval = self._capacity.in_force(site_id)
                if interval.capacity_w is not None:
                    await self._log.record_capacity(site_id, current, interval.capacity_w, now)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # a storage hiccup: the next tick tries again
                log.exception("recording plans failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
