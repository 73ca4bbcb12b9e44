"""The version-neutral application service behind the OCPP handlers.

Handlers (``v16.py``, ``v201.py``) translate and call in here; this module decides the
answers and hands state changes to the journal (``journal.py``), from which the applier
writes storage and publishes events. Answers never wait on the central database for
transaction messages: only on the journal's local commit.

Decisions that need the database, and what happens when it does not answer within
``storage_timeout_s`` (2 s: well inside a charger's 30 s+ message timeout):

- Authorize: the ``Authorizer`` decides; no answer -> ``Invalid`` (fail safe: no new
  charging on an unknown balance).
- 1.6 StartTransaction: the transaction id comes from the database sequence; no answer ->
  a local id from the journal (see ``LOCAL_TRANSACTION_ID_BASE``). The id tag is
  authorized; no answer -> ``Accepted`` (the car is already charging; the session is
  recorded and billed later rather than lost).
- 2.0.1 TransactionEvent with an id token: as StartTransaction.

A station retransmitting StartTransaction (its answer was lost) gets the same
transaction id back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from ems.bus import EventBus
from ems.clock import Clock
from ems.domain.card import AuthorizationDecision, AuthorizationStatus, authorize_card
from ems.domain.events import StationConnected, StationDisconnected
from ems.domain.station import OcppVersion
from ems.errors import NotFound, StorageError
from ems.ocpp import translate as t
from ems.ocpp.journal import Journal
from ems.ocpp.traffic import OcppTraffic
from ems.ocpp.translate.edge import clean_text
from ems.ports.control import Authorizer
from ems.ports.stores import CardStore, OcppStores

log = logging.getLogger(__name__)

T = TypeVar("T")

STORAGE_TIMEOUT_S = 2.0
HEARTBEAT_INTERVAL_S = 300
"""Heartbeat interval told to stations at boot: OCPP's customary 5 minutes; WebSocket pings do the liveness work."""
SEEN_EVERY_S = 60.0
"""Write a station's last-seen time at most once a minute (heartbeats would otherwise be a write each)."""
START_DEDUP_SIZE = 10_000


class CardAuthorizer:
    """The card-only ``Authorizer``: card status and expiry, no balance (billing provides the full one)."""

    def __init__(self, cards: CardStore, clock: Clock) -> None:
        self._cards = cards
        self._clock = clock

    async def authorize(self, id_tag: str, *, station_id: str, evse_id: int | None = None) -> AuthorizationDecision:
        card = await self._cards.get(id_tag)
        return AuthorizationDecision(
            status=authorize_card(card, self._clock.now()),
            expires_at=None if card is None else card.expires_at,
            account_id=None if card is None else card.account_id,
        )


class OcppService:
    def __init__(
        self,
        storage: OcppStores,
        bus: EventBus,
        clock: Clock,
        journal: Journal,
        authorizer: Authorizer,
        *,
        heartbeat_interval_s: int = HEARTBEAT_INTERVAL_S,
        storage_timeout_s: float = STORAGE_TIMEOUT_S,
    ) -> None:
        self.storage = storage
        self.bus = bus
        self.clock = clock
        self.journal = journal
        self.authorizer = authorizer
        self.heartbeat_interval_s = heartbeat_interval_s
        self.storage_timeout_s = storage_timeout_s
        self._starts: OrderedDict[tuple[str, int, str, str, int], t.Payload] = OrderedDict()
        self._seen: dict[str, float] = {}
        self._stragglers: set[asyncio.Future[Any]] = set()
        self.traffic = OcppTraffic()
        """What every link of this service sent and received (``/metrics``)."""

    async def bounded(self, call: Awaitable[T]) -> T:
        """``call``, or ``TimeoutError`` after ``storage_timeout_s``.

        The call itself is not cancelled on timeout (shielded): cancelling a database call
        half-way can leave a connection inside a transaction (seen with SQLite at 10,000
        simultaneous disconnects). It finishes in the background; its outcome is logged.
        """
        task = asyncio.ensure_future(call)
        try:
            async with asyncio.timeout(self.storage_timeout_s):
                return await asyncio.shield(task)
        except TimeoutError:
            self._stragglers.add(task)
            task.add_done_callback(self._straggler_done)
            raise

    def _straggler_done(self, task: asyncio.Future[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a storage call that timed out failed later: %s", task.exception())

    # ------------------------------------------------------------------ connection

    async def connected(self, station_id: str, version: OcppVersion) -> None:
        now = self.clock.now()
        self._seen[station_id] = self.clock.monotonic()
        await self._mark_seen(station_id, now, online=True)
        await self.bus.publish(StationConnected(at=now, station_id=station_id, ocpp_version=version))

    async def disconnected(self, station_id: str) -> None:
        now = self.clock.now()
        self._seen.pop(station_id, None)
        await self._mark_seen(station_id, now, online=False)
        await self.bus.publish(StationDisconnected(at=now, station_id=station_id))

    async def _mark_seen(self, station_id: str, at: datetime, *, online: bool) -> None:
        try:
            await self.bounded(self.storage.stations.mark_seen(station_id, at, online=online))
        except (StorageError, NotFound, TimeoutError) as error:  # NotFound: the station was deleted meanwhile
            log.warning("%s: cannot record online=%s: %s", station_id, online, error)

    async def seen(self, station_id: str) -> None:
        mono = self.clock.monotonic()
        if mono - self._seen.get(station_id, -SEEN_EVERY_S) >= SEEN_EVERY_S:
            self._seen[station_id] = mono
            await self._mark_seen(station_id, self.clock.now(), online=True)

    # ------------------------------------------------------------------ answers

    async def record(
        self, station_id: str, version: OcppVersion, action: str, payload: t.Payload, response: t.Payload
    ) -> t.Payload:
        """Journal a state-changing message with its answer; returns the answer once it is durable."""
        await self.journal.append(station_id, version, action, payload, response, self.clock.now())
        return response

    async def boot(self, station_id: str, version: OcppVersion, payload: t.Payload) -> t.Payload:
        response = t.boot_response(self.clock.now(), interval_s=self.heartbeat_interval_s)
        return await self.record(station_id, version, "BootNotification", payload, response)

    async def heartbeat(self, station_id: str) -> t.Payload:
        await self.seen(station_id)
        return t.heartbeat_response(self.clock.now())

    async def authorize(self, station_id: str, id_tag: str, evse_id: int | None = None) -> AuthorizationDecision:
        """For Authorize: no answer from the authorizer in time -> INVALID."""
        id_tag = clean_text(id_tag)  # a lone surrogate or NUL cannot be looked up (nor stored)
        try:
            return await self.bounded(self.authorizer.authorize(id_tag, station_id=station_id, evse_id=evse_id))
        except (StorageError, TimeoutError) as error:
            log.warning("%s: cannot authorize %s: %r", station_id, id_tag, error)
            return AuthorizationDecision(AuthorizationStatus.INVALID, reason="authorization unavailable")

    async def authorize_running(self, station_id: str, id_tag: str, evse_id: int | None = None) -> AuthorizationStatus:
        """For a transaction already under way: no answer in time -> ACCEPTED (record it, bill it later)."""
        id_tag = clean_text(id_tag)  # else a database that cannot encode it would count as "no answer"
        try:
            decision = await self.bounded(self.authorizer.authorize(id_tag, station_id=station_id, evse_id=evse_id))
        except (StorageError, TimeoutError) as error:
            log.warning("%s: cannot authorize %s for a running transaction: %r (accepted)", station_id, id_tag, error)
            return AuthorizationStatus.ACCEPTED
        return decision.status

    async def _transaction_id(self) -> int:
        try:
            return await self.bounded(self.storage.sessions.next_transaction_id())
        except (StorageError, TimeoutError) as error:
            local = await self.journal.next_local_transaction_id()
            log.warning("transaction id from the database unavailable (%r); using local id %d", error, local)
            return local

    async def start_v16(self, station_id: str, payload: t.Payload) -> t.Payload:
        key = (
            station_id,
            int(payload["connectorId"]),
            str(payload["idTag"]),
            str(payload["timestamp"]),
            int(payload["meterStart"]),
        )
        previous = self._starts.get(key)
        if previous is not None:
            return previous  # a retransmission: same transaction id; the journal has it already
        evse = int(payload["connectorId"])
        status = await self.authorize_running(station_id, str(payload["idTag"]), evse)
        response = t.start_response_v16(await self._transaction_id(), status)
        await self.record(station_id, OcppVersion.V16, "StartTransaction", payload, response)
        self._starts[key] = response
        if len(self._starts) > START_DEDUP_SIZE:
            self._starts.popitem(last=False)
        return response

    async def transaction_event(self, station_id: str, payload: t.Payload) -> t.Payload:
        token = (payload.get("idToken") or {}).get("idToken")
        evse = (payload.get("evse") or {}).get("id")
        status = None if token is None else await self.authorize_running(station_id, token, evse)
        response = t.transaction_event_response(token, status)
        return await self.record(station_id, OcppVersion.V201, "TransactionEvent", payload, response)

    def notice(self, station_id: str, action: str, payload: t.Payload) -> t.Payload:
        """Notifications that change nothing here (firmware, logs, security events, reports): logged."""
        log.info("%s: %s %s", station_id, action, payload)
        return {}
