"""A simulated charging station speaking OCPP 1.6J or 2.0.1, built on the ``ocpp`` library's client.

One ``SimStation`` has EVSEs (one connector each); an EV plugs into an EVSE, the driver
presents a card, the station authorizes and starts a transaction, charges following the
battery model (``ems.sim.ev``) and the installed charging profiles (draw = min(profile
limit, EV acceptance)), sends meter values every ``meter_interval_s`` of simulated time,
and stops when the EV leaves or is full.

Transaction messages go through an offline queue, as on a real charger: while the link
is down they wait, in order, and are sent when it is back (with their original
timestamps; a 1.6 transaction id the CSMS had not assigned yet is filled in on the way).

Time: simulated time comes from the injected ``Clock`` (``ScaledClock`` for a fast demo,
``FakeClock`` in tests). Network waits (reconnect back-off) use real time.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from ocpp.v201.enums import TransactionEventEnumType

from ems.clock import Clock, SystemClock
from ems.domain import composite
from ems.domain.card import AuthorizationStatus
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus, OcppVersion
from ems.sim import messages16 as m16
from ems.sim import messages201 as m201
from ems.sim.ev import Ev
from ems.sim.handlers import Cp16Handlers, Cp201Handlers
from ems.sim.link import SimLink
from ems.sim.profiles import Profile, effective_limit_w, station_cap_w
from ems.sim.state import Factory, Intent, IntentKind, SimEvse, SimStats, TxRef, _Answered

log = logging.getLogger(__name__)

SMART_CHARGING_CONFIG = {
    OcppVersion.V16: {
        "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
        "ChargeProfileMaxStackLevel": "8",
        "ChargingScheduleMaxPeriods": "24",
        "MaxChargingProfilesInstalled": "16",
        "ConnectorSwitch3to1PhaseSupported": "false",
    },
    OcppVersion.V201: {
        "RateUnit": "A,W",
        "ProfileStackLevel": "8",
        "PeriodsPerSchedule": "24",
        "Entries": "16",
        "PhaseSwitchingSupported": "false",
    },
}
"""What the simulated stations report about smart charging (1.6 configuration keys, 2.0.1 SmartChargingCtrlr)."""


class SimStation:
    def __init__(
        self,
        station_id: str,
        url: str,
        version: OcppVersion,
        *,
        evses: int = 2,
        password: str | None = None,
        clock: Clock | None = None,
        meter_interval_s: float = 10.0,
        tick_s: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
        vendor: str = "ems-sim",
        model: str = "SimCharger",
    ) -> None:
        self.id = station_id
        self.url = url.rstrip("/") + "/" + station_id
        self.version = version
        self.password = password
        self.clock: Clock = clock or SystemClock()
        self.meter_interval_s = meter_interval_s
        self.tick_s = tick_s
        self.ssl_context = ssl_context
        self.vendor = vendor
        self.model = model
        self.evses = {i: SimEvse(i) for i in range(1, evses + 1)}
        self.profiles: list[Profile] = []
        self.config: dict[str, str] = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": str(int(meter_interval_s)),
            **SMART_CHARGING_CONFIG[version],
        }
        self.refuse_profiles: set[str] = set()
        """Profile purposes this station refuses (a charger that will not take them)."""
        self.stats = SimStats()
        self.intents: asyncio.Queue[Intent] = asyncio.Queue()
        self.queue: deque[Factory] = deque()
        """Transaction messages not yet answered by the CSMS, oldest first (the offline queue)."""
        self.connected = asyncio.Event()
        self.online_allowed = True
        self.link = SimLink(self.id, self.url, version, password=password, ssl_context=ssl_context)
        self._flush_lock = asyncio.Lock()
        self.queue_changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    @property
    def reader(self) -> asyncio.Task[None] | None:
        """The link's receive loop while connected (``ems.sim.link.SimLink.reader``)."""
        return self.link.reader

    async def connect(self) -> None:
        """Open the WebSocket; raises on a refused handshake (``boot`` sends BootNotification)."""
        cls = Cp16Handlers if self.version is OcppVersion.V16 else Cp201Handlers
        await self.link.open(lambda ws: cls(self.id, ws, self), on_closed=self.connected.clear)

    async def boot(self) -> None:
        response = await self._call(self._messages.boot(self.model, self.vendor))
        self.stats.boot_status = response.status
        self.connected.set()
        for evse in self.evses.values():
            await self.send_status(evse.id, evse.status)
        await self.flush()

    async def disconnect(self) -> None:
        """Drop the link (as a network failure would); transaction messages queue until ``go_online``."""
        self.online_allowed = False
        self.connected.clear()
        await self.link.close()

    def go_online(self) -> None:
        self.online_allowed = True
        self.queue_changed.set()

    async def close(self) -> None:
        await self.disconnect()

    async def _call(self, payload: Any) -> Any:
        if self.link.cp is None:
            raise ConnectionError("not connected")
        self.stats.sent += 1
        return await self.link.call(payload)

    # ------------------------------------------------------------------ messages

    @property
    def _messages(self) -> Any:
        """The per-version message builders (``messages16`` or ``messages201``)."""
        return m16 if self.version is OcppVersion.V16 else m201

    async def send_status(self, evse_id: int, status: ConnectorStatus) -> None:
        self.evses[evse_id].status = status
        if not self.connected.is_set():
            return
        now = self.clock.now()
        if self.version is OcppVersion.V16:
            await self._call(m16.status(evse_id, status, now))
        else:
            await self._call(m201.status(evse_id, 1, status, now))

    async def authorize(self, id_tag: str) -> AuthorizationStatus:
        """Ask the CSMS; offline, accept locally (as a local authorization cache would)."""
        if not self.connected.is_set():
            return AuthorizationStatus.ACCEPTED
        response = await self._call(self._messages.authorize(id_tag))
        word, status = self._messages.authorization(response)
        self.stats.last_auth[id_tag] = word
        return status  # type: ignore[no-any-return]

    async def heartbeat(self) -> None:
        await self._call(self._messages.heartbeat())

    def _enqueue(self, factory: Factory, on_answer: Callable[[Any], None] | None = None) -> None:
        self.queue.append(factory if on_answer is None else _Answered(factory, on_answer))
        self.queue_changed.set()

    async def flush(self) -> None:
        """Send queued transaction messages in order while connected."""
        async with self._flush_lock:
            while self.queue and self.connected.is_set():
                item = self.queue[0]
                try:
                    response = await self._call(item())
                except OCPPError as error:
                    # The CSMS refused this message outright: retrying cannot help.
                    self.stats.call_errors += 1
                    log.warning("%s: CSMS refused a queued message: %s", self.id, error)
                    response = None
                except (websockets.ConnectionClosed, ConnectionError, TimeoutError):
                    return
                self.queue.popleft()
                if isinstance(item, _Answered) and response is not None:
                    item.on_answer(response)

    async def wait_sent(self, timeout_s: float = 10.0) -> None:
        """Until the offline queue is empty (every transaction message answered)."""

        async def drained() -> None:
            while self.queue:
                await self.flush()
                if self.queue:
                    self.queue_changed.clear()
                    await self.queue_changed.wait()

        async with asyncio.timeout(timeout_s):
            await drained()

    # ------------------------------------------------------------------ transactions

    async def start(
        self, evse_id: int, id_tag: str, ev: Ev | None = None, *, remote_start_id: int | None = None
    ) -> TxRef:
        """Plug ``ev`` in, authorize ``id_tag`` and start a transaction (queued if offline)."""
        evse = self.evses[evse_id]
        if evse.tx is not None:
            raise RuntimeError(f"EVSE {evse_id} already has a transaction")
        evse.ev = ev or evse.ev or Ev()
        await self.send_status(evse_id, ConnectorStatus.PREPARING)
        if remote_start_id is None and await self.authorize(id_tag) is not AuthorizationStatus.ACCEPTED:
            await self.send_status(evse_id, ConnectorStatus.AVAILABLE)
            evse.ev = None
            raise PermissionError(f"{id_tag} not authorized")
        now = self.clock.now()
        tx = TxRef(local_id=uuid.uuid4().hex[:12], started_at=now, id_tag=id_tag)
        evse.tx = tx
        evse.delivered_wh = 0.0
        evse.last_meter_at = now
        meter = evse.register_wh
        if self.version is OcppVersion.V16:
            start = m16.start_transaction(evse_id, id_tag, int(meter), now)

            def assigned(response: Any) -> None:
                tx.id = str(response.transaction_id)
                if not m16.start_accepted(response):
                    self.intents.put_nowait(Intent(IntentKind.STOP, evse_id, id_tag="DeAuthorized"))

            self._enqueue(lambda: start, assigned)
        else:
            tx.id = tx.local_id
            self._enqueue_event(
                tx,
                TransactionEventEnumType.started,
                at=now,
                evse_id=evse_id,
                trigger="RemoteStart" if remote_start_id is not None else "Authorized",
                charging_state="EVConnected",
                id_tag=id_tag,
                samples=(self._register_sample(evse, now, ReadingContext.TRANSACTION_BEGIN),),
                remote_start_id=remote_start_id,
            )
        self.stats.started += 1
        await self.send_status(evse_id, ConnectorStatus.CHARGING)
        await self.flush()
        return tx

    def _enqueue_event(
        self,
        tx: TxRef,
        event: TransactionEventEnumType,
        *,
        at: datetime,
        evse_id: int,
        trigger: str,
        charging_state: str | None,
        samples: tuple[MeterSample, ...],
        id_tag: str | None = None,
        remote_start_id: int | None = None,
        stopped_reason: str | None = None,
    ) -> None:
        """A 2.0.1 TransactionEvent into the offline queue, numbered now (``seqNo``)."""
        seq = tx.seq_no
        tx.seq_no += 1
        message = m201.transaction_event(
            event,
            at=at,
            trigger=trigger,
            seq_no=seq,
            transaction_id=tx.id or tx.local_id,
            evse_id=evse_id,
            charging_state=charging_state,
            id_tag=id_tag,
            samples=samples,
            remote_start_id=remote_start_id,
            stopped_reason=stopped_reason,
            offline=not self.connected.is_set(),
        )
        self._enqueue(lambda: message)

    def _register_sample(self, evse: SimEvse, at: datetime, context: ReadingContext) -> MeterSample:
        return MeterSample(
            self.id, evse.id, at, Measurand.ENERGY_IMPORT_REGISTER, round(evse.register_wh), context=context
        )

    def meter_samples(
        self, evse_id: int, context: ReadingContext = ReadingContext.SAMPLE_PERIODIC
    ) -> list[MeterSample]:
        evse = self.evses[evse_id]
        now = self.clock.now()
        samples = [self._register_sample(evse, now, context)]
        samples.append(MeterSample(self.id, evse_id, now, Measurand.POWER_IMPORT, round(evse.power_w), context=context))
        if evse.ev is not None:
            samples.append(MeterSample(self.id, evse_id, now, Measurand.SOC, round(evse.ev.soc * 100), context=context))
        return samples

    async def send_meter_values(self, evse_id: int, *, with_transaction_id: bool = True) -> None:
        """Queue a meter reading for ``evse_id`` (during a transaction it goes through the offline queue)."""
        evse = self.evses[evse_id]
        samples = self.meter_samples(evse_id)
        tx = evse.tx
        evse.last_meter_at = self.clock.now()
        if self.version is OcppVersion.V16:

            def build16() -> Any:
                tx_id = None if tx is None or not with_transaction_id or tx.id is None else int(tx.id)
                return m16.meter_values(evse_id, samples, tx_id)

            self._enqueue(build16)
        elif tx is not None and with_transaction_id:
            self._enqueue_event(
                tx,
                TransactionEventEnumType.updated,
                at=self.clock.now(),
                evse_id=evse_id,
                trigger="MeterValuePeriodic",
                charging_state="Charging" if evse.power_w > 0 else "SuspendedEV",
                samples=tuple(samples),
            )
        else:
            message = m201.meter_values(evse_id, samples)
            self._enqueue(lambda: message)
        await self.flush()

    async def stop(self, evse_id: int, reason: str = "EVDisconnected", *, unplug: bool = True) -> TxRef:
        evse = self.evses[evse_id]
        tx = evse.tx
        if tx is None:
            raise RuntimeError(f"EVSE {evse_id} has no transaction")
        now = self.clock.now()
        evse.tx = None
        evse.power_w = 0.0
        self.profiles = list(composite.end_transaction(self.profiles, evse_id, tx.id))  # its TxProfiles go with it
        if self.version is OcppVersion.V16:
            meter = int(evse.register_wh)
            end = [self._register_sample(evse, now, ReadingContext.TRANSACTION_END)]

            def build() -> Any:  # at send time: the CSMS may have assigned the id meanwhile
                return m16.stop_transaction(
                    meter_stop_wh=meter,
                    at=now,
                    transaction_id=int(tx.id or 0),
                    reason=reason,
                    id_tag=tx.id_tag,
                    samples=end,
                )

            self._enqueue(build)
        else:
            self._enqueue_event(
                tx,
                TransactionEventEnumType.ended,
                at=now,
                evse_id=evse_id,
                trigger="EVDeparted" if reason == "EVDisconnected" else "StopAuthorized",
                charging_state="Idle",
                samples=(self._register_sample(evse, now, ReadingContext.TRANSACTION_END),),
                stopped_reason=reason,
            )
        self.stats.stopped += 1
        if unplug:
            evse.ev = None
        await self.send_status(evse_id, ConnectorStatus.AVAILABLE if unplug else ConnectorStatus.FINISHING)
        await self.flush()
        return tx

    def limit_w(self, evse_id: int) -> float | None:
        evse = self.evses[evse_id]
        tx = evse.tx
        return effective_limit_w(
            self.profiles,
            evse_id=evse_id,
            now=self.clock.now(),
            tx_id=None if tx is None else tx.id,
            tx_started_at=None if tx is None else tx.started_at,
        )

    def advance(self, duration_s: float) -> None:
        """Charge every EVSE with a transaction for ``duration_s`` of simulated time (pure bookkeeping).

        Each EV draws what its composite limit allows; a station maximum caps the station's sum
        (shared in proportion to what each EV would draw)."""
        wanted: dict[int, float] = {}
        for evse in self.evses.values():
            wanted[evse.id] = 0.0 if evse.tx is None or evse.ev is None else evse.ev.draw_w(self.limit_w(evse.id))
        cap_w = station_cap_w(self.profiles, self.clock.now())
        total_w = sum(wanted.values())
        scale = 1.0 if cap_w is None or total_w <= cap_w else cap_w / total_w
        for evse in self.evses.values():
            evse.power_w = wanted[evse.id] * scale
            if evse.ev is None or evse.tx is None:
                continue
            evse.ev, energy_wh = evse.ev.charged(evse.power_w, duration_s)
            evse.register_wh += energy_wh
            evse.delivered_wh += energy_wh

    # ------------------------------------------------------------------ commands from the CSMS

    def request(
        self, kind: IntentKind, evse_id: int, *, id_tag: str | None = None, remote_start_id: int | None = None
    ) -> None:
        """Queue a start or stop for the intent loop (handlers answer first, then the station acts)."""
        self.intents.put_nowait(Intent(kind, evse_id, id_tag=id_tag, remote_start_id=remote_start_id))

    def find_tx(self, transaction_id: str) -> SimEvse | None:
        for evse in self.evses.values():
            if evse.tx is not None and evse.tx.id == transaction_id:
                return evse
        return None

    def pick_evse(self, evse_id: int | None) -> int | None:
        if evse_id:
            return evse_id if evse_id in self.evses and self.evses[evse_id].tx is None else None
        return next((e.id for e in self.evses.values() if e.tx is None), None)

    def install_profile(self, profile: Profile) -> None:
        self.profiles = list(composite.install(self.profiles, profile))

    def clear_profiles(
        self, profile_id: int | None, evse_id: int | None, purpose: str | None, stack_level: int | None
    ) -> bool:
        before = len(self.profiles)
        self.profiles = list(
            composite.clear(
                self.profiles, profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level
            )
        )
        return len(self.profiles) < before
