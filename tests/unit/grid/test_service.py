"""The capacity service: one path for every door; validate, apply, publish, persist, answer."""

from __future__ import annotations

import asyncio
import json

import pytest

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.domain.capacity import CapacityChangeReason, SignalKind, SignalSource
from ems.domain.events import CapacityChanged, CapacitySignalReceived, DomainEvent
from ems.errors import NotFound
from ems.grid.capacity import CapacityPolicy
from ems.ports.grid import CapacitySignals
from ems.services.capacity import CapacityService
from tests.unit.grid.fakes import FixedSiteLoad, MemorySignalStore
from tests.unit.grid.helpers import T0, site

FORECAST = {
    "message_id": "f1",
    "forecasted_blocks": [
        {"capacity": 40, "unit": "KW", "start_time": "2026-01-05T08:00:00Z", "end_time": "2026-01-05T09:00:00Z"}
    ],
}


def make(
    store: MemorySignalStore | None = None, **site_overrides: object
) -> tuple[CapacityService, FakeClock, EventBus]:
    clock = FakeClock(T0)
    bus = EventBus()
    service = CapacityService(
        CapacityPolicy([site(**site_overrides)]),
        bus=bus,
        clock=clock,
        store=store if store is not None else MemorySignalStore(),
        site_load=FixedSiteLoad(per_phase_w=10_000, sessions=3),
    )
    return service, clock, bus


def drain(sub: object) -> list[DomainEvent]:
    return sub.drain()  # type: ignore[attr-defined,no-any-return]


async def test_accepted_forecast_is_applied_published_persisted_and_acked() -> None:
    store = MemorySignalStore()
    service, _, bus = make(store)
    sub = bus.subscribe(name="test")
    outcome = await service.submit(
        json.dumps(FORECAST), site_id="depot", source=SignalSource.MQTT, kind=SignalKind.FORECAST
    )
    assert outcome.accepted and not outcome.duplicate
    assert outcome.reply["message_id"] == "f1"
    assert outcome.reply["in_force"]["capacity_w"] == 40_000
    assert outcome.reply["in_force"]["capacity_source"] == "forecast"
    events = drain(sub)
    assert isinstance(events[0], CapacitySignalReceived)
    assert isinstance(events[1], CapacityChanged) and events[1].reason is CapacityChangeReason.NEW_FORECAST
    assert [(s.message_id, ok, err) for s, ok, err in store.rows] == [("f1", True, None)]
    assert store.payloads == [None]  # an accepted signal is described by its blocks


async def test_rejected_signal_changes_nothing_and_is_persisted_with_reasons() -> None:
    store = MemorySignalStore()
    service, _, bus = make(store)
    sub = bus.subscribe(name="test")
    outcome = await service.submit(b"{garbage", site_id="depot", source=SignalSource.MQTT)
    assert not outcome.accepted
    assert outcome.reply["problems"][0].startswith("malformed JSON")
    assert drain(sub) == []
    assert service.in_force("depot").capacity_w == 100_000
    assert store.rows[0][1] is False and "malformed JSON" in (store.rows[0][2] or "")
    assert store.payloads == ["{garbage"]


async def test_unknown_site_is_rejected_not_raised() -> None:
    service, _, _ = make()
    outcome = await service.submit(FORECAST, site_id="elsewhere", source=SignalSource.API)
    assert outcome.problems == ("unknown site 'elsewhere'",)


async def test_redelivery_is_acked_as_duplicate_without_events() -> None:
    service, _, bus = make()
    await service.submit(FORECAST, site_id="depot", source=SignalSource.MQTT)
    sub = bus.subscribe(name="test")
    again = await service.submit(FORECAST, site_id="depot", source=SignalSource.MQTT)
    assert again.accepted and again.duplicate and again.reply["duplicate"] is True
    assert drain(sub) == []


async def test_storage_failure_does_not_lose_the_signal() -> None:
    service, _, _ = make(MemorySignalStore(fail=True))
    outcome = await service.submit(FORECAST, site_id="depot", source=SignalSource.API)
    assert outcome.accepted
    assert service.in_force("depot").capacity_w == 40_000


async def test_status_has_load_limit_headroom_and_sessions() -> None:
    service, _, _ = make()
    await service.submit(FORECAST, site_id="depot", source=SignalSource.API)
    status = service.status("depot")
    assert status["measured"]["power_w"] == 30_000
    assert status["limit"]["capacity_w"] == 40_000
    assert status["headroom_w"] == 10_000
    assert status["headroom_a"]["L1"] == pytest.approx(160 - 10_000 / 230)
    assert status["active_sessions"] == 3
    assert status["stale"] is False


async def test_site_load_shows_in_status_and_none_without_one() -> None:
    clock = FakeClock(T0)
    without = CapacityService(CapacityPolicy([site()]), bus=EventBus(), clock=clock)
    assert without.status("depot")["measured"]["power_w"] is None
    load = FixedSiteLoad(per_phase_w=1_000, sessions=1)
    service = CapacityService(CapacityPolicy([site()]), bus=EventBus(), clock=clock, site_load=load)
    status = service.status("depot")
    assert (status["measured"]["power_w"], status["headroom_w"], status["active_sessions"]) == (3_000, 97_000, 1)


async def test_unknown_target_reads_raise_not_found() -> None:
    service, _, _ = make()
    with pytest.raises(NotFound):
        service.timeline("elsewhere")
    with pytest.raises(NotFound):
        service.timeline("depot", "nope")


async def test_ticker_publishes_expiry_and_staleness_on_the_fake_clock() -> None:
    service, clock, bus = make(stale_after_s=7200.0)
    sub = bus.subscribe(CapacityChanged, name="test")
    stop = asyncio.Event()
    await service.submit(FORECAST, site_id="depot", source=SignalSource.API)
    drain(sub)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(service.run(stop))
        clock.advance(3600)  # 09:00: the block ends
        expired = await asyncio.wait_for(sub.get(), 1)
        clock.advance(3600)  # 10:00: two hours of silence
        stale = await asyncio.wait_for(sub.get(), 1)
        stop.set()
    assert (expired.reason, expired.capacity_w) == (CapacityChangeReason.BLOCK_EXPIRED, 100_000)
    assert (stale.circuit_id, stale.reason, stale.capacity_w) == (None, CapacityChangeReason.STALE, 20_000)


async def test_while_running_audit_records_are_written_in_batches_and_flushed_on_stop() -> None:
    store = MemorySignalStore()
    service, _, _ = make(store)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(service.run(stop))
        await asyncio.wait_for(service.running.wait(), 1)
        for i in range(5):
            await service.submit({**FORECAST, "message_id": f"m{i}"}, site_id="depot", source=SignalSource.MQTT)
        await service.submit(b"nope", site_id="depot", source=SignalSource.MQTT)
        await asyncio.wait_for(service.flush(), 1)
        assert [s.message_id for s, _, _ in store.rows] == ["m0", "m1", "m2", "m3", "m4", None]
        assert sum(store.batches) == 6 and len(store.batches) < 6
        await service.submit({**FORECAST, "message_id": "last"}, site_id="depot", source=SignalSource.MQTT)
        stop.set()
    assert store.rows[-1][0].message_id == "last"


def test_the_service_satisfies_the_port() -> None:
    service, _, _ = make()
    port: CapacitySignals = service
    assert port.site_ids() == ["depot"]
