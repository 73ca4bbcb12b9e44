"""A billing failure that is not an EmsError (a pricing bug, a session pricing refuses) never stops the
listener: it is logged, counted and quarantined, and the next event is handled (both back ends)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.domain.events import SessionEnded, SessionStarted
from ems.domain.quarantine import QuarantineSource
from ems.services.billing import BillingPolicy
from ems.services.billing_listener import BillingListener
from ems.services.billing_setup import build_billing
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


async def test_a_failing_settlement_is_quarantined_and_the_listener_goes_on(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = EventBus()
    billing = build_billing(storage, clock=FakeClock(T0), policy=BillingPolicy())
    listener = BillingListener(billing.service, bus, quarantine=storage.quarantine)

    async def refuses(session_id: str) -> object:
        raise ValueError(f"session stops before it starts ({session_id})")

    monkeypatch.setattr(billing.service, "session_ended", refuses)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await bus.publish(SessionEnded(at=T0, session_id="S-BAD", station_id="CP-1", evse_id=1, energy_wh=1.0))
        await bus.publish(SessionStarted(at=T0, session_id="S-NEXT", station_id="CP-1", evse_id=1, id_tag=None))
        await asyncio.wait_for(listener.wait_until(lambda: listener.handled >= 2), 10)
        assert not task.done()  # still running
        assert listener.failed == 1 and listener.quarantined == 1 and "S-NEXT" in listener.started
        [entry] = await storage.quarantine.list(source=QuarantineSource.BILLING)
        assert entry.action == "SessionEnded" and "before it starts" in entry.reason and "S-BAD" in entry.payload
        # The same failure again (the sweep, a restart) is stored once: the id is a hash of the event.
        await listener.handle(SessionEnded(at=T0, session_id="S-BAD", station_id="CP-1", evse_id=1, energy_wh=1.0))
        assert await storage.quarantine.count() == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_sweep_skips_a_session_it_cannot_settle_and_settles_the_others(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    billing = build_billing(storage, clock=FakeClock(T0), policy=BillingPolicy())
    service = billing.service
    bad, good = "S-POISON", "S-FINE"

    class _Hold:
        def __init__(self, session_id: str) -> None:
            self.session_id = session_id

    class _Session:
        def __init__(self, session_id: str) -> None:
            self.id = session_id
            self.stopped_at = T0

    async def open_holds() -> list[_Hold]:
        return [_Hold(bad), _Hold(good)]

    async def get(session_id: str) -> _Session:
        return _Session(session_id)

    tried: list[str] = []

    async def session_ended(session_id: str) -> None:
        tried.append(session_id)
        if session_id == bad:
            raise ValueError("session stops before it starts")

    monkeypatch.setattr(service.billing.ledger, "open_holds", open_holds)
    monkeypatch.setattr(service.sessions, "get", get)
    monkeypatch.setattr(service, "session_ended", session_ended)
    assert await service.settle_ended() == [good]
    assert await service.settle_ended() == [good]  # the poison is not tried again
    assert tried == [bad, good, good]
