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
import base64
import logging
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import websockets
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as c16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201
from websockets.asyncio.client import ClientConnection

from ems.clock import Clock, SystemClock
from ems.domain.card import AuthorizationStatus
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus, OcppVersion
from ems.ocpp import translate as t
from ems.sim.ev import Ev
from ems.sim.handlers import Cp16Handlers, Cp201Handlers
from ems.sim.profiles import Profile, effective_limit_w
from ems.sim.state import Factory, Intent, IntentKind, SimEvse, SimStats, TxRef, _Answered

log = logging.getLogger(__name__)


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
        }
        self.stats = SimStats()
        self.intents: asyncio.Queue[Intent] = asyncio.Queue()
        self.queue: deque[Factory] = deque()
        """Transaction messages not yet answered by the CSMS, oldest first (the offline queue)."""
        self.connected = asyncio.Event()
        self.online_allowed = True
        self._ws: ClientConnection | None = None
        self._cp: Cp16 | Cp201 | None = None
        self.reader: asyncio.Task[None] | None = None
        """Runs the library's receive loop while connected; ends when the link closes."""
        self._flush_lock = asyncio.Lock()
        self.queue_changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _tls(self) -> dict[str, Any]:
        """websockets wants ``ssl`` only for wss:// (the system trust store unless a context is given)."""
        if self.ssl_context is not None:
            return {"ssl": self.ssl_context}
        return {}

    async def connect(self) -> None:
        """Open the WebSocket and send BootNotification; raises on a refused handshake."""
        ws = await websockets.connect(
            self.url,
            subprotocols=[websockets.Subprotocol(self.version.value)],
            additional_headers=self._headers(),
            **self._tls(),
            open_timeout=10,
            compression=None,
        )
        cls = Cp16Handlers if self.version is OcppVersion.V16 else Cp201Handlers
        self._cp = cls(self.id, ws, self)
        self._ws = ws
        self.reader = asyncio.get_running_loop().create_task(self._read(self._cp))

    async def _read(self, cp: Cp16 | Cp201) -> None:
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.connected.clear()

    async def boot(self) -> None:
        if self.version is OcppVersion.V16:
            response = await self._call(
                c16.BootNotification(charge_point_model=self.model, charge_point_vendor=self.vendor)
            )
        else:
            response = await self._call(
                c201.BootNotification(
                    charging_station={"model": self.model, "vendor_name": self.vendor}, reason="PowerUp"
                )
            )
        self.stats.boot_status = response.status
        self.connected.set()
        for evse in self.evses.values():
            await self.send_status(evse.id, evse.status)
        await self.flush()

    async def disconnect(self) -> None:
        """Drop the link (as a network failure would); transaction messages queue until ``go_online``."""
        self.online_allowed = False
        self.connected.clear()
        if self._ws is not None:
            await self._ws.close()
            await self._ws.wait_closed()
        if self.reader is not None:
            # The reader ends as soon as the close handshake is done; wait (5 s at most) without
            # cancelling it or raising what it raised, so a disconnect never fails.
            await asyncio.wait({self.reader}, timeout=5)

    def go_online(self) -> None:
        self.online_allowed = True
        self.queue_changed.set()

    async def close(self) -> None:
        await self.disconnect()

    async def _call(self, payload: Any) -> Any:
        if self._cp is None:
            raise ConnectionError("not connected")
        self.stats.sent += 1
        return await self._cp.call(payload, suppress=False)

    # ------------------------------------------------------------------ messages

    def _build(self, action: str, payload: t.Payload) -> Any:
        module = c16 if self.version is OcppVersion.V16 else c201
        return getattr(module, action)(**camel_to_snake_case(payload))

    async def send_status(self, evse_id: int, status: ConnectorStatus) -> None:
        self.evses[evse_id].status = status
        if not self.connected.is_set():
            return
        now = self.clock.now()
        if self.version is OcppVersion.V16:
            await self._call(self._build("StatusNotification", t.status_notification_v16(evse_id, status, now)))
        else:
            await self._call(self._build("StatusNotification", t.status_notification_v201(evse_id, 1, status, now)))

    async def authorize(self, id_tag: str) -> AuthorizationStatus:
        """Ask the CSMS; offline, accept locally (as a local authorization cache would)."""
        if not self.connected.is_set():
            return AuthorizationStatus.ACCEPTED
        if self.version is OcppVersion.V16:
            response = await self._call(c16.Authorize(id_tag=id_tag))
            word = response.id_tag_info["status"]
        else:
            response = await self._call(c201.Authorize(id_token={"id_token": id_tag, "type": "ISO14443"}))
            word = response.id_token_info["status"]
        self.stats.last_auth[id_tag] = word
        return t.authorization_status(word)

    async def heartbeat(self) -> None:
        await self._call(c16.Heartbeat() if self.version is OcppVersion.V16 else c201.Heartbeat())

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
            payload = {
                "connectorId": evse_id,
                "idTag": id_tag,
                "meterStart": int(meter),
                "timestamp": t.format_time(now),
            }

            def assigned(response: Any) -> None:
                tx.id = str(response.transaction_id)
                if response.id_tag_info["status"] != "Accepted":
                    self.intents.put_nowait(Intent(IntentKind.STOP, evse_id, id_tag="DeAuthorized"))

            self._enqueue(lambda: self._build("StartTransaction", payload), assigned)
        else:
            tx.id = tx.local_id
            update = t.TxUpdate(
                kind=t.TxKind.STARTED,
                station_id=self.id,
                at=now,
                transaction_id=tx.id,
                evse_id=evse_id,
                id_tag=id_tag,
                samples=(self._register_sample(evse, now, ReadingContext.TRANSACTION_BEGIN),),
                remote_start_id=remote_start_id,
                offline=not self.connected.is_set(),
            )
            self._enqueue_event(
                tx, update, "RemoteStart" if remote_start_id is not None else "Authorized", "EVConnected"
            )
        self.stats.started += 1
        await self.send_status(evse_id, ConnectorStatus.CHARGING)
        await self.flush()
        return tx

    def _enqueue_event(self, tx: TxRef, update: t.TxUpdate, trigger: str, charging_state: str | None) -> None:
        seq = tx.seq_no
        tx.seq_no += 1
        payload = t.transaction_event_v201(update, trigger_reason=trigger, seq_no=seq, charging_state=charging_state)
        self._enqueue(lambda: self._build("TransactionEvent", payload))

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
            values = t.meter_value_list_v16(samples)

            def build16() -> Any:
                tx_id = None if tx is None or not with_transaction_id or tx.id is None else int(tx.id)
                return c16.MeterValues(connector_id=evse_id, meter_value=values, transaction_id=tx_id)

            self._enqueue(build16)
        elif tx is not None and with_transaction_id:
            update = t.TxUpdate(
                kind=t.TxKind.UPDATED,
                station_id=self.id,
                at=self.clock.now(),
                transaction_id=tx.id,
                evse_id=evse_id,
                samples=tuple(samples),
                offline=not self.connected.is_set(),
            )
            self._enqueue_event(tx, update, "MeterValuePeriodic", "Charging" if evse.power_w > 0 else "SuspendedEV")
        else:
            values = t.meter_value_list_v201(samples)
            self._enqueue(lambda: c201.MeterValues(evse_id=evse_id, meter_value=values))
        await self.flush()

    async def stop(self, evse_id: int, reason: str = "EVDisconnected", *, unplug: bool = True) -> TxRef:
        evse = self.evses[evse_id]
        tx = evse.tx
        if tx is None:
            raise RuntimeError(f"EVSE {evse_id} has no transaction")
        now = self.clock.now()
        evse.tx = None
        evse.power_w = 0.0
        if self.version is OcppVersion.V16:
            meter = int(evse.register_wh)
            data = t.meter_value_list_v16([self._register_sample(evse, now, ReadingContext.TRANSACTION_END)])

            def build() -> Any:
                return c16.StopTransaction(
                    meter_stop=meter,
                    timestamp=t.format_time(now),
                    transaction_id=int(tx.id or 0),
                    reason=reason,
                    id_tag=tx.id_tag,
                    transaction_data=data,
                )

            self._enqueue(build)
        else:
            update = t.TxUpdate(
                kind=t.TxKind.ENDED,
                station_id=self.id,
                at=now,
                transaction_id=tx.id,
                evse_id=evse_id,
                reason=reason,
                samples=(self._register_sample(evse, now, ReadingContext.TRANSACTION_END),),
                offline=not self.connected.is_set(),
            )
            self._enqueue_event(tx, update, "EVDeparted" if reason == "EVDisconnected" else "StopAuthorized", "Idle")
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
        """Charge every EVSE with a transaction for ``duration_s`` of simulated time (pure bookkeeping)."""
        for evse in self.evses.values():
            if evse.tx is None or evse.ev is None:
                evse.power_w = 0.0
                continue
            evse.power_w = evse.ev.draw_w(self.limit_w(evse.id))
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
        self.profiles = [
            p
            for p in self.profiles
            if not (
                p.id == profile.id
                or (
                    p.evse_id == profile.evse_id
                    and p.purpose == profile.purpose
                    and p.stack_level == profile.stack_level
                )
            )
        ]
        self.profiles.append(profile)

    def clear_profiles(
        self, profile_id: int | None, evse_id: int | None, purpose: str | None, stack_level: int | None
    ) -> bool:
        def matches(p: Profile) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return (
                (evse_id is None or p.evse_id == evse_id)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        before = len(self.profiles)
        self.profiles = [p for p in self.profiles if not matches(p)]
        return len(self.profiles) < before
