"""The MQTT adapter for grid-capacity signals (aiomqtt).

Topics (``{prefix}`` is ``ems/v1``)::

    in   {prefix}/sites/{site}/capacity/forecast                  OSCP-shaped forecast
         {prefix}/sites/{site}/capacity/limit                     immediate limit
         {prefix}/sites/{site}/circuits/{circuit}/capacity/forecast
         {prefix}/sites/{site}/circuits/{circuit}/capacity/limit
    out  {prefix}/sites/{site}/capacity/ack      message id and what is now in force (QoS 1)
         {prefix}/sites/{site}/capacity/errors   why a message was rejected (QoS 1)
         {prefix}/sites/{site}/status            retained; every ``status_interval_s`` and on change

The adapter subscribes only to the sites this controller owns. It speaks MQTT 5 (3.1.1 with
``?protocol=3.1.1`` on the URL), QoS 1, with a persistent session (``clean_start`` false
and a session expiry) so QoS 1 messages sent while ems restarts are delivered on return.
A lost connection is retried with exponential backoff (0.5 s doubling to 30 s, with
jitter) and every subscription is made again; retained messages the broker replays then
are applied without counting as a sign of life (``fresh=False``), and message ids already
in force are acknowledged as duplicates. Nothing here validates or decides: every message
goes to ``CapacitySignals.submit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ems.bus import Subscription
from ems.domain.capacity import SignalKind, SignalSource
from ems.domain.events import CapacityChanged
from ems.errors import ConfigError
from ems.ports.grid import CapacitySignals

log = logging.getLogger(__name__)

TOPIC_PREFIX = "ems/v1"
QOS = 1

MAX_INFLIGHT = 50
"""QoS 1 replies awaiting their PUBACK at once (paho's default window is 20)."""

STATUS_MIN_GAP_S = 1.0
"""On-change status is coalesced to at most one message per second: a burst of 1,000
signals/s must not become 1,000 retained status messages."""


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5
    client_id: str = "ems-grid"
    """Stable across restarts so the broker keeps the session; unique per ems instance."""
    topic_prefix: str = TOPIC_PREFIX
    status_interval_s: float = 30.0
    session_expiry_s: int = 3600
    """The broker holds QoS 1 messages for an absent ems for an hour (a restart, an upgrade)."""
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | None = None,
        client_id: str = "ems-grid",
        **overrides: Any,
    ) -> MqttOptions:
        """``mqtt://host:1883`` or ``mqtts://host:8883``; ``?protocol=3.1.1`` selects MQTT 3.1.1."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"MQTT URL {url!r} must look like mqtt://host:1883 or mqtts://host:8883")
        query = parse_qs(parts.query)
        protocol = aiomqtt.ProtocolVersion.V5
        if query.get("protocol", ["5"])[0] in ("3.1.1", "311", "4"):
            protocol = aiomqtt.ProtocolVersion.V311
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=username or (unquote(parts.username) if parts.username else None),
            password=password or (unquote(parts.password) if parts.password else None),
            tls=tls,
            tls_ca=tls_ca,
            protocol=protocol,
            client_id=client_id,
            **overrides,
        )


@dataclass(frozen=True, slots=True)
class Route:
    site_id: str
    circuit_id: str | None
    kind: SignalKind


def parse_topic(topic: str, prefix: str = TOPIC_PREFIX) -> Route | None:
    """The target of an incoming capacity topic, or ``None`` for any other topic."""
    head = f"{prefix}/sites/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    try:
        if len(parts) == 3 and parts[1] == "capacity":
            return Route(parts[0], None, SignalKind(parts[2]))
        if len(parts) == 5 and parts[1] == "circuits" and parts[3] == "capacity":
            return Route(parts[0], parts[2], SignalKind(parts[4]))
    except ValueError:
        return None
    return None


def site_topic(prefix: str, site_id: str, leaf: str) -> str:
    return f"{prefix}/sites/{site_id}/{leaf}"


class MqttGridAdapter:
    """Runs until stopped; survives broker restarts. ``connected`` is set while a session is up."""

    name = "grid-mqtt"

    def __init__(
        self,
        signals: CapacitySignals,
        options: MqttOptions,
        *,
        changes: Subscription[CapacityChanged] | None = None,
    ) -> None:
        self._signals = signals
        self.options = options
        self._changes = changes
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.connections = 0
        self.received = 0
        self._outbox: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize=10_000)

    # ------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                async with self._client() as client:
                    attempt = 0
                    await self._session(client, stop)
            except* aiomqtt.MqttError as group:
                self.connected.clear()
                self.disconnected.set()
                delay = self._backoff(attempt)
                attempt += 1
                log.warning(
                    "MQTT %s:%d: %s; reconnecting in %.1f s",
                    self.options.host,
                    self.options.port,
                    "; ".join(str(e) for e in group.exceptions),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        self.connected.clear()
        self.disconnected.set()

    def _backoff(self, attempt: int) -> float:
        base = min(self.options.reconnect_max_s, self.options.reconnect_min_s * 2.0 ** min(attempt, 16))
        return base * random.uniform(0.8, 1.2)  # jitter: many controllers must not reconnect in lockstep

    def _client(self) -> aiomqtt.Client:
        o = self.options
        v5 = o.protocol is aiomqtt.ProtocolVersion.V5
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = o.session_expiry_s
        tls_context = None
        if o.tls:
            tls_context = ssl.create_default_context(cafile=str(o.tls_ca) if o.tls_ca else None)
        return aiomqtt.Client(
            o.host,
            o.port,
            username=o.username,
            password=o.password,
            identifier=o.client_id,
            protocol=o.protocol,
            clean_session=None if v5 else False,
            clean_start=False if v5 else 3,  # 3 == MQTT_CLEAN_START_FIRST_ONLY, ignored for 3.1.1
            properties=properties,
            keepalive=o.keepalive_s,
            tls_context=tls_context,
            timeout=10.0,
            max_inflight_messages=MAX_INFLIGHT,
        )

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        client.pending_calls_threshold = MAX_INFLIGHT + 10  # aiomqtt warns above 10 by default
        prefix = self.options.topic_prefix
        # The kinds are named, not wildcarded: ``capacity/+`` would also bring back our own acks and errors.
        for site_id in self._signals.site_ids():
            for kind in SignalKind:
                for leaf in (f"capacity/{kind.value}", f"circuits/+/capacity/{kind.value}"):
                    topic = site_topic(prefix, site_id, leaf)
                    granted = await client.subscribe(topic, qos=QOS)
                    if any(_refused(code) for code in granted):
                        # Not fatal (other sites may be allowed), but this site hears no grid operator.
                        log.error("MQTT broker refused the subscription to %s: %s", topic, list(granted))
        self.connections += 1
        self.disconnected.clear()
        self.connected.set()
        log.info("MQTT connected to %s:%d as %s", self.options.host, self.options.port, self.options.client_id)
        for site_id in self._signals.site_ids():
            self._queue_status(site_id)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._receive(client)),
                tg.create_task(self._send(client)),
                tg.create_task(self._status()),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()

    # ------------------------------------------------------------ in

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.received += 1
            await self.handle(str(message.topic), _payload_bytes(message.payload), retained=message.retain)

    async def handle(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """Submit one message and queue its ack or error reply."""
        route = parse_topic(topic, self.options.topic_prefix)
        if route is None:
            log.debug("ignoring message on %s", topic)
            return
        outcome = await self._signals.submit(
            payload,
            site_id=route.site_id,
            source=SignalSource.MQTT,
            kind=route.kind,
            circuit_id=route.circuit_id,
            fresh=not retained,
        )
        leaf = "capacity/ack" if outcome.accepted else "capacity/errors"
        self._queue(site_topic(self.options.topic_prefix, route.site_id, leaf), outcome.reply, retain=False)

    # ------------------------------------------------------------ out

    def _queue(self, topic: str, body: Mapping[str, Any], *, retain: bool) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            self._outbox.put_nowait((topic, data, retain))
        except asyncio.QueueFull:
            log.warning("MQTT outbox full (10,000 replies): reply on %s dropped", topic)

    def _queue_status(self, site_id: str) -> None:
        topic = site_topic(self.options.topic_prefix, site_id, "status")
        self._queue(topic, self._signals.status(site_id), retain=True)

    async def _send(self, client: aiomqtt.Client) -> None:
        """Publish queued replies in order, up to ``MAX_INFLIGHT`` awaiting their PUBACK at once.

        One at a time would cap replies at one per broker round trip (0.3 ms idle, several ms
        on a loaded machine), below a 1,000 signal/s stream.
        """
        window = asyncio.Semaphore(MAX_INFLIGHT)

        async def publish(topic: str, data: bytes, retain: bool) -> None:
            try:
                await client.publish(topic, data, qos=QOS, retain=retain)
            finally:
                window.release()

        async with asyncio.TaskGroup() as group:
            while True:
                topic, data, retain = await self._outbox.get()
                await window.acquire()
                group.create_task(publish(topic, data, retain))

    async def _status(self) -> None:
        """Status for every site every ``status_interval_s``; for a site whose capacity changed, within 1 s."""
        loop = asyncio.get_running_loop()
        next_all = loop.time() + self.options.status_interval_s
        while True:
            changed: set[str] = set()
            timeout = max(0.0, next_all - loop.time())
            if self._changes is None:
                await asyncio.sleep(timeout)
            else:
                with contextlib.suppress(TimeoutError):
                    first = await asyncio.wait_for(self._changes.get(), timeout)
                    changed = {first.site_id, *(e.site_id for e in self._changes.drain())}
            if loop.time() >= next_all:
                changed = set(self._signals.site_ids())
                next_all = loop.time() + self.options.status_interval_s
            for site_id in changed & set(self._signals.site_ids()):
                self._queue_status(site_id)
            if changed and self._changes is not None:
                await asyncio.sleep(STATUS_MIN_GAP_S)


def _refused(code: Any) -> bool:
    """A SUBACK entry that refuses: 0x80 and above (a ReasonCode in MQTT 5, an int in 3.1.1)."""
    value = code.value if hasattr(code, "value") else code
    return isinstance(value, int) and value >= 0x80


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
