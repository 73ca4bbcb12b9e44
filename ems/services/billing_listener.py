"""Billing's subscriber on the event bus: the OCPP flow's sessions, held, watched and settled.

``SessionStarted`` -> hold (or link the app start's hold); ``MeterSampled`` -> accrued-cost
watch; ``SessionEnded`` -> price, capture, release. The applier publishes an event only after
the session and its samples are stored, so the service reads them back from storage.

The subscription blocks the publisher when full (``Overflow.BLOCK``): billing must see every
start and end. A failure on one event is logged and left to the sweep, which every
``SWEEP_S`` settles ended sessions whose hold is still open (e.g. the database was down when
the end arrived) and releases app holds whose session never started.

Any other failure (a bug, or a session pricing refuses) never stops the listener, and so never
takes ``ems serve`` down: it is logged with its traceback, counted in ``failed``, and the event
is quarantined (``QuarantineSource.BILLING``, visible in ``GET /api/v1/ocpp/quarantine``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from ems.bus import EventBus, Overflow, Subscription
from ems.domain.events import DomainEvent, MeterSampled, SessionEnded, SessionStarted
from ems.domain.quarantine import QuarantineSource, quarantined
from ems.errors import EmsError
from ems.ports.stores import QuarantineStore
from ems.services.billing import BillingService
from ems.services.charge import PayBeforeStart
from ems.tasks import wait_any

log = logging.getLogger(__name__)

SWEEP_S = 60.0
"""Settle/release sweep period: well below BillingPolicy.pending_start_s (180 s), cheap (one indexed query)."""
QUEUE_SIZE = 10_000


class BillingListener:
    name = "billing"
    restartable = True
    """Safe: every money movement is idempotent (holds and captures are keyed by session), the
    subscription is kept across a restart (closed only at stop) and the sweep settles the rest."""

    def __init__(self, service: BillingService, bus: EventBus, *, quarantine: QuarantineStore | None = None) -> None:
        self.service = service
        self.quarantine = quarantine
        self.quarantined = 0
        self.charges = PayBeforeStart(service)
        self.handled = 0
        self.failed = 0
        self.started: set[str] = set()
        self.ended: set[str] = set()
        """Sessions whose start / end billing has handled (for waiting on, in tests and the demo)."""
        self.idle = asyncio.Event()
        self._progress = asyncio.Condition()
        self._events: Subscription[DomainEvent] = bus.subscribe(
            SessionStarted, MeterSampled, SessionEnded, name="billing", maxsize=QUEUE_SIZE, overflow=Overflow.BLOCK
        )

    async def run(self, stop: asyncio.Event) -> None:
        sweeper = asyncio.create_task(self._sweep_loop(stop), name="billing-sweep")
        try:
            while not stop.is_set():
                if self._events.pending() == 0:
                    self.idle.set()
                getter = asyncio.ensure_future(self._events.get())
                try:
                    await wait_any([getter, sweeper], stop)
                finally:
                    if not getter.done():
                        getter.cancel()
                if getter.done() and not getter.cancelled():
                    self.idle.clear()
                    await self.handle(getter.result())
                if sweeper.done() and not stop.is_set():
                    sweeper.result()  # the sweep failed: fail with it, so the supervisor sees and restarts
                    raise RuntimeError("the billing sweep stopped on its own")
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if stop.is_set():  # a failure keeps the subscription for the restart: no event is lost
                self._events.close()

    async def handle(self, event: DomainEvent) -> None:
        try:
            if isinstance(event, SessionStarted):
                await self.service.session_started(event.session_id, station_id=event.station_id, id_tag=event.id_tag)
                self.started.add(event.session_id)
            elif isinstance(event, MeterSampled):
                for session_id in {s.session_id for s in event.samples if s.session_id}:
                    await self.service.watch_accrued(session_id)
            elif isinstance(event, SessionEnded):
                cost = await self.service.session_ended(event.session_id)
                log.info("session %s priced %s", event.session_id, cost.cdr.total)
                self.ended.add(event.session_id)
        except EmsError as error:
            # Left for the sweep (ended sessions) or harmless (a missed accrued check); never stops the listener.
            self.failed += 1
            log.warning("billing could not handle %s for session %s: %s", type(event).__name__, _session(event), error)
        except Exception as error:  # never fatal: logged with its traceback, quarantined, counted
            self.failed += 1
            log.exception("billing failed on %s for session %s", type(event).__name__, _session(event))
            await self._quarantine(event, error)
        self.handled += 1
        async with self._progress:
            self._progress.notify_all()

    async def _quarantine(self, event: DomainEvent, error: Exception) -> None:
        if self.quarantine is None:
            return
        entry = quarantined(
            QuarantineSource.BILLING,
            station_id=getattr(event, "station_id", None),
            action=type(event).__name__,
            payload=json.dumps({"session_id": _session(event), "at": event.at.isoformat()}),
            reason=f"{type(error).__name__}: {error}",
            received_at=event.at,
            quarantined_at=self.service.clock.now(),
        )
        try:
            await self.quarantine.add(entry)
        except EmsError as failure:
            log.warning("cannot quarantine the failed %s: %s", type(event).__name__, failure)
        else:
            self.quarantined += 1

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds after an event was handled (bound it with ``asyncio.wait_for``)."""
        async with self._progress:
            await self._progress.wait_for(done)

    async def sweep(self) -> None:
        """Settle ended sessions whose hold is still open; release app starts that never began."""
        await self.service.settle_ended()
        await self.charges.release_stale()

    async def _sweep_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except EmsError as error:
                log.warning("billing sweep failed: %s", error)
            except Exception:  # a bug in one settlement must not stop billing: logged, tried next sweep
                log.exception("billing sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_S)


def _session(event: DomainEvent) -> str | None:
    return getattr(event, "session_id", None)
