"""The capacity application service: one code path for every capacity signal.

MQTT (``ems.grid.mqtt``), the REST API and the grid-operator simulator all call
``CapacityService.submit``, which validates the payload, applies it to the policy,
publishes ``CapacitySignalReceived`` and ``CapacityChanged`` on the bus, persists the
signal (accepted or rejected) through the ``CapacitySignalStore`` port and returns the
ack or error body. No MQTT, HTTP or SQL in here: this module is version- and door-neutral.

``run(stop)`` is the ticker: it wakes when the policy says something changes on its own
(a block starts or ends, a site goes stale) and publishes those events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ems.clock import Clock, sleep_until_set
from ems.controller.bus import EventBus
from ems.domain.capacity import CapacityInterval, CapacitySignal, SignalKind, SignalSource
from ems.domain.events import CapacityChanged, CapacitySignalReceived
from ems.errors import NotFound, StorageError
from ems.grid.capacity import CapacityPolicy
from ems.grid.payload import Rejection, ack_payload, error_payload, parse_signal, status_payload
from ems.ports import CapacitySignalStore, SignalOutcome, SiteLoad, SiteLoadReading

log = logging.getLogger(__name__)

MAX_TICK_WAIT_S = 5.0
"""Upper bound between ticks even when nothing is due: a clock step (NTP) is noticed within 5 s."""


class CapacityService:
    name = "grid-capacity"

    def __init__(
        self,
        policy: CapacityPolicy,
        *,
        bus: EventBus,
        clock: Clock,
        store: CapacitySignalStore | None = None,
        site_load: SiteLoad | None = None,
    ) -> None:
        self.policy = policy
        self._bus = bus
        self._clock = clock
        self._store = store
        # Public: the composition root sets it after construction, as the controller (the provider) needs
        # this service itself.
        self.site_load = site_load
        self._wake = asyncio.Event()
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0

    def site_ids(self) -> list[str]:
        return self.policy.site_ids()

    def attach_site_load(self, site_load: SiteLoad) -> None:
        """Late binding: the controller that measures the load is built after this service."""
        self._site_load = site_load

    async def submit(
        self,
        raw: bytes | str | Mapping[str, Any],
        *,
        site_id: str,
        source: SignalSource,
        kind: SignalKind | None = None,
        circuit_id: str | None = None,
        fresh: bool = True,
    ) -> SignalOutcome:
        now = self._clock.now()
        try:
            site = self.policy.site(site_id)
        except KeyError:
            site = None
        parsed = parse_signal(
            raw, site_id=site_id, site=site, received_at=now, source=source, kind=kind, circuit_id=circuit_id
        )
        if isinstance(parsed, Rejection):
            return await self._reject(parsed)
        if self.policy.is_duplicate(parsed):
            # QoS 1 is at-least-once, and the broker replays retained messages on resubscribe.
            self.duplicates += 1
            in_force = self.policy.in_force(site_id, parsed.circuit_id, now)
            await self._persist(parsed, accepted=True, error="duplicate message id; not applied again")
            reply = ack_payload(parsed, in_force, duplicate=True)
            return SignalOutcome(True, parsed, reply, duplicate=True, in_force=in_force)
        events = self.policy.apply(parsed, fresh=fresh)
        self.accepted += 1
        self._wake.set()  # the next due time may have moved
        await self._bus.publish(CapacitySignalReceived(at=now, signal=parsed))
        for event in events:
            await self._bus.publish(event)
        in_force = self.policy.in_force(site_id, parsed.circuit_id, now)
        await self._persist(parsed, accepted=True)
        log.info(
            "capacity %s for %s%s from %s accepted (message %s): %s W in force",
            parsed.kind.value,
            site_id,
            f"/{parsed.circuit_id}" if parsed.circuit_id else "",
            source.value,
            parsed.message_id,
            in_force.capacity_w,
        )
        return SignalOutcome(True, parsed, ack_payload(parsed, in_force), in_force=in_force)

    async def _reject(self, rejection: Rejection) -> SignalOutcome:
        self.rejected += 1
        log.warning(
            "capacity %s for %s from %s rejected (message %s): %s",
            rejection.kind.value,
            rejection.site_id,
            rejection.source.value,
            rejection.message_id,
            "; ".join(rejection.problems),
        )
        signal = rejection.as_signal()
        await self._persist(signal, accepted=False, error="; ".join(rejection.problems))
        return SignalOutcome(False, signal, error_payload(rejection), problems=rejection.problems)

    async def _persist(self, signal: CapacitySignal, *, accepted: bool, error: str | None = None) -> None:
        if self._store is None:
            return
        try:
            await self._store.add(signal, accepted=accepted, error=error)
        except StorageError as exc:
            # The signal is applied (safety first); only its audit record is lost, and that is logged.
            log.warning("capacity signal %s for %s not persisted: %s", signal.message_id, signal.site_id, exc)

    # ------------------------------------------------------------ reading

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]:
        self._check_target(site_id, circuit_id)
        now = self._clock.now()
        return self.policy.timeline(site_id, circuit_id, now, now + timedelta(seconds=horizon_s))

    def in_force(self, site_id: str, circuit_id: str | None = None) -> CapacityInterval:
        self._check_target(site_id, circuit_id)
        return self.policy.in_force(site_id, circuit_id, self._clock.now())

    def latest(self, site_id: str, circuit_id: str | None, kind: SignalKind) -> CapacitySignal | None:
        self._check_target(site_id, circuit_id)
        return self.policy.latest(site_id, circuit_id, kind)

    def status(self, site_id: str) -> Mapping[str, Any]:
        self._check_target(site_id, None)
        now = self._clock.now()
        load = self.site_load.site_load(site_id) if self.site_load is not None else SiteLoadReading()
        return status_payload(site_id, now, self.policy.in_force(site_id, None, now), load)

    def _check_target(self, site_id: str, circuit_id: str | None) -> None:
        try:
            targets = self.policy.targets(site_id)
        except KeyError:
            raise NotFound(f"no site {site_id!r}") from None
        if circuit_id not in targets:
            raise NotFound(f"no circuit {circuit_id!r} in site {site_id!r}")

    # ------------------------------------------------------------ time

    async def tick(self) -> list[CapacityChanged]:
        """Apply what came due by now (blocks starting or ending, staleness) and publish the events."""
        events = self.policy.tick(self._clock.now())
        for event in events:
            log.info(
                "capacity of %s%s now %s W (%s)",
                event.site_id,
                f"/{event.circuit_id}" if event.circuit_id else "",
                event.capacity_w,
                event.reason.value,
            )
            await self._bus.publish(event)
        return events

    async def run(self, stop: asyncio.Event) -> None:
        """Tick whenever something is due, until ``stop`` is set."""
        while not stop.is_set():
            await self.tick()
            now = self._clock.now()
            due = self.policy.next_change_at(now)
            wait_s = MAX_TICK_WAIT_S if due is None else min(MAX_TICK_WAIT_S, (due - now).total_seconds())
            self._wake.clear()
            await sleep_until_set(self._clock, max(wait_s, 0.0), self._wake, stop)
