"""Journal -> storage and domain events: the one writer of OCPP state, thin I/O around the rules.

Takes journaled records in order, in batches (up to ``BATCH``). For each record: what it
means (``translate.inbound.interpret``: the edge checks, then translation), the sessions it
needs loaded from storage into the ``SessionBook``, and what the session rules
(``ems.domain.session_rules``, pure) make of it. Then the whole batch is written in ONE
storage transaction: new and changed sessions, status history, station info, meter samples
(stored once per natural key), quarantine entries. Only after the batch is stored are its
events published and its records acked.

Failures, and what happens (never a crash, never a retry for ever):

- storage unavailable (``StorageUnavailable``): the same batch is retried with back-off (0.2 s
  doubling to 5 s); the stations keep getting answers because the journal stands behind them;
- a record ``interpret`` rejects (schema-valid but unusable: an EVSE number of 10^15, a
  transaction id it cannot read), or whose rules raise: quarantined with the reason;
- the batch write fails otherwise (a station deleted meanwhile, a value the database refuses):
  the batch is rolled back and written record by record, each in its own transaction, each
  tried ``RECORD_ATTEMPTS`` times; a record that still fails is quarantined, the rest are stored.

A quarantined record is acked like any other: a restart does not replay it into the same
failure (and re-quarantining the same record stores it once: its id is a hash of it).

``stats`` holds plain counters for metrics (``ApplierStats``); the journal's lag is
``Journal.backlog()`` and ``Journal.oldest_received_at()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ems.bus import EventBus
from ems.clock import Clock
from ems.domain.events import DomainEvent, StationBooted, StatusChanged
from ems.domain.quarantine import QuarantinedMessage, QuarantineSource, quarantined
from ems.domain.session import ChargingSession, MeterSample
from ems.domain.session_rules import Outcome, SessionBook
from ems.domain.station import ConnectorStatusRecord
from ems.errors import NotFound, StorageError, StorageUnavailable
from ems.ocpp.journal import Journal, Record
from ems.ocpp.translate import ChargingNeeds, TxUpdate
from ems.ocpp.translate.edge import station_time
from ems.ocpp.translate.inbound import Booted, Ignored, Rejected, interpret
from ems.ports.stores import OcppStores

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH = 200
"""Records per storage round trip. Measured: 500 pushed the p99 answer time to ~90 ms (the
batch's sample rows hold the GIL while they are written); 200 keeps it near 40 ms at 3,500 msg/s."""
LINGER_S = 0.02
"""Wait this long for more records when a batch is small: 20 ms of delay to storage and events,
in exchange for ~10x fewer storage transactions under load."""
YIELD_EVERY = 25
"""Records interpreted between yields to the event loop: ~25 x 100 us = 2.5 ms, so a 500-record
batch never holds up the handlers' answers for more than a few milliseconds (p99 target 50 ms)."""
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
CLOCK_WARNING_EVERY_S = 3600.0
RECORD_ATTEMPTS = 3
"""Tries of one record's write (or read) that fails for a reason other than an unavailable
database (a deadlock, a refused value) before it is quarantined: a transient error passes in 3."""


@dataclass(slots=True)
class ApplierStats:
    """Plain counters, for the metrics collector and tests. Monotonic except ``last_batch_s``."""

    records: int = 0
    batches: int = 0
    batch_seconds_total: float = 0.0
    last_batch_s: float = 0.0
    retries: int = 0
    """Storage round trips retried because storage was unavailable."""
    quarantined: int = 0
    fallbacks: int = 0
    """Batches whose one-transaction write failed and were written record by record."""
    time_corrected: int = 0
    """Messages whose station time was replaced by the receive time (clock ahead, unreadable, before 2010)."""
    notes: dict[str, int] = field(default_factory=dict)
    """Session-rule notes by name (``session_rules.Note``): duplicates, superseded sessions, ..."""


@dataclass(slots=True)
class _Effect:
    """What one record changes."""

    record: Record
    outcome: Outcome = field(default_factory=Outcome)
    statuses: list[ConnectorStatusRecord] = field(default_factory=list)
    boots: list[Booted] = field(default_factory=list)
    quarantine: QuarantinedMessage | None = None


class Applier:
    def __init__(self, journal: Journal, storage: OcppStores, bus: EventBus, clock: Clock) -> None:
        self.journal = journal
        self.storage = storage
        self.bus = bus
        self.clock = clock
        self.book = SessionBook()
        self.stats = ApplierStats()
        self._inflight: list[Record] = []
        """The batch being applied: kept until it is stored or quarantined, so a restart re-applies it."""
        self._warned: dict[str, float] = {}
        self.idle = asyncio.Event()
        """Set whenever everything journaled so far is in storage (tests and shutdown wait on it)."""
        self.idle.set()
        self.retrying = asyncio.Event()
        """Set while storage is failing and a batch waits to be retried (a visible state, and for tests)."""

    @property
    def applied(self) -> int:
        return self.stats.records

    @property
    def retries(self) -> int:
        return self.stats.retries

    async def run(self) -> None:
        while True:
            if self._inflight:
                # A failure got past the quarantine below (storage down while quarantining) and the
                # supervisor restarted us: nothing of this batch was acked, so apply it again.
                records = self._inflight
            else:
                if self.journal.backlog() == 0:
                    self.idle.set()
                records = await self.journal.take(BATCH)
                self.idle.clear()
                if len(records) < BATCH:
                    # Gather a bigger batch: one storage round trip for many records beats one each.
                    await asyncio.sleep(LINGER_S)
                    records += self.journal.take_ready(BATCH - len(records))
                self._inflight = records
            try:
                await self.apply(records)
            except Exception as error:
                # A bug past every per-record guard: the records were taken from the journal's queue,
                # so dying here would skip them (and a later ack would delete them). Quarantine them.
                log.exception("OCPP applier: a batch of %d records failed; quarantining it", len(records))
                await self._quarantine_all(records, error)
            self._inflight = []

    def in_flight(self) -> int:
        """Records taken from the journal and not yet stored (the batch being applied)."""
        return len(self._inflight)

    async def _quarantine_all(self, records: list[Record], error: Exception) -> None:
        for record in records:
            effect = _Effect(record)
            self._quarantine(effect, f"the applier failed on its batch: {type(error).__name__}: {error}")
            await self._store_quarantine(effect)
            self.stats.quarantined += 1
        self.stats.records += len(records)
        self.journal.ack(records[-1].seq)

    async def apply(self, records: list[Record]) -> None:
        started = time.perf_counter()
        effects: list[_Effect] = []
        for i, record in enumerate(records):
            if i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the handlers answer stations between slices of a big batch
            effects.append(await self._effect(record))
        try:
            await self._write_all(effects)
        except Exception:
            log.exception("OCPP applier: a batch of %d records failed to store; storing them one by one", len(records))
            self.stats.fallbacks += 1
            for effect in effects:
                await self._write_one(effect)
        for effect in effects:
            if effect.quarantine is not None:
                self.stats.quarantined += 1
                continue
            for event in _events(effect):
                await self.bus.publish(event)
        self.book.forget_completed()
        self.stats.records += len(records)
        self.stats.batches += 1
        self.stats.last_batch_s = time.perf_counter() - started
        self.stats.batch_seconds_total += self.stats.last_batch_s
        self.journal.ack(records[-1].seq)

    # ------------------------------------------------------------------ meaning

    async def _effect(self, record: Record) -> _Effect:
        effect = _Effect(record)
        meaning = interpret(
            record.version,
            record.action,
            record.payload,
            record.response,
            station_id=record.station_id,
            received_at=record.received_at,
        )
        flag = station_time(record.payload.get("timestamp"), record.received_at).flag
        if flag is not None:
            self.stats.time_corrected += 1
            self._clock_warning(record, flag)
        try:
            match meaning:
                case TxUpdate():
                    await self._load(meaning)
                    effect.outcome = self.book.apply(meaning, new_session_id=uuid.uuid4().hex)
                case ChargingNeeds():
                    await self._load_evse(record.station_id, meaning.evse_id)
                    effect.outcome = self.book.charging_needs(record.station_id, meaning, at=record.received_at)
                case ConnectorStatusRecord():
                    effect.statuses.append(meaning)
                case Booted():
                    effect.boots.append(meaning)
                case Rejected():
                    self._quarantine(effect, meaning.reason)
                case Ignored():
                    log.debug("%s: %s", record.station_id, meaning.reason)
        except StorageUnavailable:
            raise
        except Exception as error:  # a bug or a value storage refuses to look up: quarantined, never fatal
            log.exception("%s: %s cannot be applied", record.station_id, record.action)
            effect.outcome = Outcome()
            self._quarantine(effect, f"cannot be applied: {type(error).__name__}: {error}")
        for note in effect.outcome.notes:
            self.stats.notes[note.value] = self.stats.notes.get(note.value, 0) + 1
        return effect

    def _clock_warning(self, record: Record, flag: str) -> None:
        """At most one warning per station every ``CLOCK_WARNING_EVERY_S``: a wrong clock is wrong on every message."""
        now = self.clock.monotonic()
        if now - self._warned.get(record.station_id, -CLOCK_WARNING_EVERY_S) >= CLOCK_WARNING_EVERY_S:
            self._warned[record.station_id] = now
            log.warning(
                "%s: station time %r replaced by the receive time (%s); its clock needs setting",
                record.station_id,
                str(record.payload.get("timestamp"))[:40],
                flag,
            )

    def _quarantine(self, effect: _Effect, reason: str) -> None:
        r = effect.record
        log.warning("%s: %s quarantined: %s", r.station_id, r.action, reason)
        effect.quarantine = quarantined(
            QuarantineSource.OCPP,
            station_id=r.station_id,
            action=f"{r.version.value} {r.action}",
            payload=json.dumps(r.payload, separators=(",", ":"), default=str),
            reason=reason,
            received_at=r.received_at,
            quarantined_at=self.clock.now(),
        )

    async def _load(self, u: TxUpdate) -> None:
        """Read into the book what the rules need for ``u``: its session, and its EVSE's open one."""
        sid = u.station_id
        tx = u.transaction_id
        if tx is not None and not self.book.knows(sid, tx):
            session = await self._read(lambda: self.storage.sessions.find_by_transaction(sid, tx))
            if session is not None:
                self.book.remember(session)
        if u.evse_id is not None and (tx is None or not self.book.knows(sid, tx)):
            await self._load_evse(sid, u.evse_id)

    async def _load_evse(self, station_id: str, evse_id: int) -> None:
        if not self.book.knows_evse(station_id, evse_id):
            session = await self._read(lambda: self.storage.sessions.active_for_evse(station_id, evse_id))
            if session is not None:
                self.book.remember(session)

    async def _read(self, query: Callable[[], Awaitable[T]]) -> T:
        """A storage read, retried with back-off while storage is unavailable, ``RECORD_ATTEMPTS`` times otherwise."""
        delay = RETRY_FIRST_S
        attempts = 0
        while True:
            try:
                return await query()
            except StorageUnavailable as error:
                self._retrying(error, delay)
            except StorageError as error:
                attempts += 1
                if type(error) is not StorageError or attempts >= RECORD_ATTEMPTS:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _retrying(self, error: Exception, delay: float) -> None:
        self.stats.retries += 1
        self.retrying.set()
        log.warning("OCPP applier: storage unavailable (%s); retrying in %.1f s", error, delay)

    # ------------------------------------------------------------------ storage

    async def _write_all(self, effects: list[_Effect]) -> None:
        """The batch in one transaction, retried whole while storage is unavailable."""
        delay = RETRY_FIRST_S
        while True:
            try:
                async with self.storage.transaction():
                    await self._write(effects)
            except StorageUnavailable as error:
                self._retrying(error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                self.retrying.clear()
                return

    async def _write_one(self, effect: _Effect) -> None:
        """One record in its own transaction; after ``RECORD_ATTEMPTS`` failures, quarantined instead."""
        delay = RETRY_FIRST_S
        attempts = 0
        while True:
            try:
                async with self.storage.transaction():
                    await self._write([effect])
            except StorageUnavailable as error:
                self._retrying(error, delay)
            except Exception as error:
                attempts += 1
                if type(error) is not StorageError or attempts >= RECORD_ATTEMPTS:
                    # Refused for good (NotFound, Conflict, a value the database cannot hold), or
                    # a plain database error that did not pass in RECORD_ATTEMPTS tries.
                    log.exception("%s: %s cannot be stored", effect.record.station_id, effect.record.action)
                    failure = f"cannot be stored: {type(error).__name__}: {error}"
                    break
                log.warning(
                    "%s: storing %s failed (%s); trying again", effect.record.station_id, effect.record.action, error
                )
            else:
                self.retrying.clear()
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        touched = {s.id for s in (*effect.outcome.new, *effect.outcome.changed)}
        self.book.forget(touched)  # the book ran ahead of storage for these: read them again next time
        self._quarantine(effect, failure)
        effect.outcome = Outcome()
        await self._store_quarantine(effect)

    async def _store_quarantine(self, effect: _Effect) -> None:
        assert effect.quarantine is not None
        delay = RETRY_FIRST_S
        for _ in range(RECORD_ATTEMPTS):
            try:
                await self.storage.quarantine.add(effect.quarantine)
            except StorageUnavailable as error:
                self._retrying(error, delay)
            except Exception:
                log.exception("%s: cannot quarantine %s; it is dropped", effect.record.station_id, effect.record.action)
                return
            else:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        log.error(
            "%s: %s not quarantined (storage unavailable); it is dropped",
            effect.record.station_id,
            effect.record.action,
        )

    async def _write(self, effects: list[_Effect]) -> None:
        """Every change of ``effects``, inside the caller's transaction."""
        new: dict[str, ChargingSession] = {}
        changed: dict[str, ChargingSession] = {}
        samples: list[MeterSample] = []
        for e in effects:
            if e.quarantine is not None:
                await self.storage.quarantine.add(e.quarantine)
                continue
            for boot in e.boots:
                await self._write_boot(e.record.station_id, boot)
            for status in e.statuses:
                await self.storage.stations.record_status(status)
            for s in e.outcome.new:
                new[s.id] = s
            for s in e.outcome.changed:
                (new if s.id in new else changed)[s.id] = s
            samples.extend(e.outcome.samples)
        for session in new.values():
            await self.storage.sessions.add(session)
        for session in changed.values():
            await self.storage.sessions.update(session)
        if samples:
            await self.storage.samples.add_many(samples)

    async def _write_boot(self, station_id: str, booted: Booted) -> None:
        station = await self.storage.stations.get(station_id)
        if station is None:
            raise NotFound(f"station {station_id} is not registered")
        info = booted.info
        await self.storage.stations.update(
            replace(
                station,
                vendor=info.vendor,
                model=info.model,
                serial_number=info.serial_number,
                firmware_version=info.firmware_version,
            )
        )


def _events(effect: _Effect) -> list[DomainEvent]:
    r = effect.record
    out: list[DomainEvent] = []
    for boot in effect.boots:
        out.append(
            StationBooted(
                at=r.received_at,
                station_id=r.station_id,
                vendor=boot.info.vendor,
                model=boot.info.model,
                firmware_version=boot.info.firmware_version,
            )
        )
    for s in effect.statuses:
        out.append(
            StatusChanged(
                at=s.at, station_id=s.station_id, evse_id=s.evse_id, connector_id=s.connector_id, status=s.status
            )
        )
    out.extend(effect.outcome.events)
    return out
