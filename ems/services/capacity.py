"""The capacity application service: one code path for every capacity signal.

MQTT (``ems.grid.mqtt``), the REST API and the grid-operator simulator all call
``CapacityService.submit``, which validates the payload, applies it to the policy,
publishes ``CapacitySignalReceived`` and ``CapacityChanged`` on the bus, persists the
signal (accepted or rejected) through the ``CapacitySignalStore`` port and returns the
ack or error body. No MQTT, HTTP or SQL in here: this module is version- and door-neutral.

``run(stop)`` is the ticker: it wakes when the policy says something changes on its own
(a block starts or ends, a site goes stale) and publishes those events. While it runs it
also writes the audit records in batches, off the signal's path: one database round trip
per signal would cap a busy MQTT stream at the database's latency (0.5 ms a row on SQLite
here, several ms on a loaded machine) and delay every following signal. Without ``run``
(a one-shot tool, some tests) each record is written before ``submit`` returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ems.bus import EventBus
from ems.clock import Clock, sleep_until_set
from ems.domain.capacity import (
    MAX_AUDIT_PAYLOAD_CHARS,
    CapacityInterval,
    CapacitySignal,
    SignalAudit,
    SignalKind,
    SignalOutcome,
    SignalSource,
    SiteLoadReading,
)
from ems.domain.events import CapacityChanged, CapacitySignalReceived
from ems.errors import NotFound, StorageError
from ems.grid.capacity import CapacityPolicy
from ems.grid.payload import Rejection, ack_payload, error_payload, parse_signal, status_payload
from ems.ports.grid import SiteLoad
from ems.ports.stores import CapacitySignalStore

log = logging.getLogger(__name__)

MAX_TICK_WAIT_S = 5.0
"""Upper bound between ticks even when nothing is due: a clock step (NTP) is noticed within 5 s."""

AUDIT_BATCH = 500
AUDIT_QUEUE = 100_000
"""Audit records held while the database is slow: 100 s of a 1,000 signal/s stream (~50 MB)."""


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
        self.site_load = site_load
        """The measured load (the controller's live state, ``ems.controller.state.LiveState``); ``None``: unknown."""
        self._wake = asyncio.Event()
        self._audit: asyncio.Queue[SignalAudit] = asyncio.Queue(maxsize=AUDIT_QUEUE)
        self._audit_ready = asyncio.Event()
        self.running = asyncio.Event()
        self._writer_running = False
        self.audit_dropped = 0
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0

    def site_ids(self) -> list[str]:
        return self.policy.site_ids()

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
            return await self._reject(parsed, raw)
        if self.policy.is_duplicate(parsed):
            # QoS 1 is at-least-once, and the broker replays retained messages on resubscribe.
            self.duplicates += 1
            in_force = self.policy.in_force(site_id, parsed.circuit_id, now)
            await self._persist(SignalAudit(parsed, True, "duplicate message id; not applied again"))
            reply = ack_payload(parsed, in_force, duplicate=True)
            return SignalOutcome(True, parsed, reply, duplicate=True, in_force=in_force)
        events = self.policy.apply(parsed, fresh=fresh)
        self.accepted += 1
        self._wake.set()  # the next due time may have moved
        await self._bus.publish(CapacitySignalReceived(at=now, signal=parsed))
        for event in events:
            await self._bus.publish(event)
        in_force = self.policy.reported(site_id, parsed.circuit_id) or self.policy.in_force(
            site_id, parsed.circuit_id, now
        )
        await self._persist(SignalAudit(parsed, True))
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

    async def _reject(self, rejection: Rejection, raw: bytes | str | Mapping[str, Any]) -> SignalOutcome:
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
        await self._persist(SignalAudit(signal, False, "; ".join(rejection.problems), _as_text(raw)))
        return SignalOutcome(False, signal, error_payload(rejection), problems=rejection.problems)

    async def _persist(self, record: SignalAudit) -> None:
        if self._store is None:
            return
        if not self._writer_running:
            await self._write([record])
            return
        try:
            self._audit.put_nowait(record)
            self._audit_ready.set()
        except asyncio.QueueFull:
            self.audit_dropped += 1
            if self.audit_dropped in (1, 100) or self.audit_dropped % 10_000 == 0:
                log.warning("capacity audit queue full: %d records not persisted", self.audit_dropped)

    async def _write(self, records: list[SignalAudit]) -> None:
        assert self._store is not None
        try:
            if len(records) == 1:
                r = records[0]
                await self._store.add(r.signal, accepted=r.accepted, error=r.error, payload=r.payload)
            else:
                await self._store.add_many(records)
        except StorageError as exc:
            # The signals are applied (safety first); only their audit records are lost, and that is logged.
            log.warning("%d capacity signal audit record(s) not persisted: %s", len(records), exc)

    async def _audit_writer(self, stop: asyncio.Event) -> None:
        """Write queued audit records in batches of up to ``AUDIT_BATCH``; on stop, drain then return."""
        while True:
            if self._audit.empty():
                if stop.is_set():
                    return
                self._audit_ready.clear()
                await sleep_until_set(self._clock, MAX_TICK_WAIT_S, self._audit_ready, stop)
                continue
            batch = [self._audit.get_nowait() for _ in range(min(AUDIT_BATCH, self._audit.qsize()))]
            await self._write(batch)
            for _ in batch:
                self._audit.task_done()

    async def flush(self) -> None:
        """Wait until every queued audit record is written."""
        await self._audit.join()

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
        """Tick whenever something is due and write audit records, until ``stop`` is set (then flush)."""
        self._writer_running = self._store is not None
        self.running.set()
        try:
            async with asyncio.TaskGroup() as group:
                if self._store is not None:
                    group.create_task(self._audit_writer(stop), name="grid-audit-writer")
                while not stop.is_set():
                    await self.tick()
                    now = self._clock.now()
                    due = self.policy.next_change_at(now)
                    wait_s = MAX_TICK_WAIT_S if due is None else min(MAX_TICK_WAIT_S, (due - now).total_seconds())
                    self._wake.clear()
                    await sleep_until_set(self._clock, max(wait_s, 0.0), self._wake, stop)
        finally:
            self._writer_running = False
            self.running.clear()


def _as_text(raw: bytes | str | Mapping[str, Any]) -> str:
    """The raw body for the audit log, cut to ``MAX_AUDIT_PAYLOAD_CHARS`` (undecodable bytes replaced)."""
    if isinstance(raw, bytes):
        text = raw[: MAX_AUDIT_PAYLOAD_CHARS * 4].decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        text = json.dumps(raw, default=str)
    return text[:MAX_AUDIT_PAYLOAD_CHARS]
