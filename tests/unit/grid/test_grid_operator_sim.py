"""The grid-operator simulator drives the capacity service in-process, on a fake clock."""

from __future__ import annotations

import asyncio

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.domain.capacity import CapacityChangeReason, LimitSource
from ems.domain.events import CapacityChanged
from ems.grid.capacity import CapacityPolicy
from ems.services.capacity import CapacityService
from ems.sim.grid_operator import GridOperatorSim, ServiceSink
from tests.unit.grid.helpers import T0, site


async def test_demo_script_sends_a_forecast_then_a_limit_that_expires() -> None:
    clock = FakeClock(T0)
    bus = EventBus()
    the_site = site()
    service = CapacityService(CapacityPolicy([the_site]), bus=bus, clock=clock)
    changes = bus.subscribe(CapacityChanged, name="test")
    lines: list[str] = []
    sim = GridOperatorSim(ServiceSink(service), the_site, clock, report=lines.append)
    stop = asyncio.Event()

    async def next_site_change() -> CapacityChanged:
        while True:
            event = await asyncio.wait_for(changes.get(), 1)
            if event.circuit_id is None:
                return event

    async with asyncio.TaskGroup() as tg:
        tg.create_task(sim.run(stop))
        tg.create_task(service.run(stop))
        clock.advance(2)
        forecast = await next_site_change()
        clock.advance(13)
        limit = await next_site_change()
        clock.advance(20)
        expired = await next_site_change()
        stop.set()
    assert (forecast.reason, forecast.capacity_w) == (CapacityChangeReason.NEW_FORECAST, 80_000)
    assert (limit.reason, limit.capacity_w, limit.source) == (
        CapacityChangeReason.IMMEDIATE_LIMIT,
        40_000,
        LimitSource.LIMIT,
    )
    assert (expired.reason, expired.capacity_w) == (CapacityChangeReason.BLOCK_EXPIRED, 80_000)
    assert sim.sent == 2 and all(r["accepted"] for r in sim.replies)
    assert len(lines) == 2 and "congestion" in lines[1]
