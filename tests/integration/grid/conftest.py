"""Real Mosquitto for the grid tests: the shared broker at 127.0.0.1:1883, or a private one to restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ems.bus import EventBus
from ems.clock import Clock, SystemClock
from ems.domain.events import CapacityChanged
from ems.domain.site import Circuit, Site
from ems.grid.capacity import CapacityPolicy
from ems.grid.mqtt import MqttGridAdapter, MqttOptions
from ems.services.capacity import CapacityService
from tests.unit.grid.fakes import FixedSiteLoad, MemorySignalStore

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 1883
WAIT_S = 5.0
"""Generous for a loaded 2-core machine; a local broker round trip is ~1 ms."""


def unique_site_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@dataclass
class Grid:
    """A running capacity service + MQTT adapter for one unique site."""

    site: Site
    service: CapacityService
    adapter: MqttGridAdapter
    bus: EventBus
    store: MemorySignalStore
    stop: asyncio.Event
    prefix: str = "ems/v1"
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def topic(self, leaf: str) -> str:
        return f"{self.prefix}/sites/{self.site.id}/{leaf}"


def make_site(stale_after_s: float = 900.0) -> Site:
    return Site(
        id=unique_site_id(),
        capacity_w=100_000.0,
        failsafe_capacity_w=11_000.0,
        stale_after_s=stale_after_s,
        circuits=(Circuit(id="feeder-a", capacity_w=50_000.0),),
    )


def forecast(capacity_kw: float, message_id: str, minutes: int = 60) -> dict[str, Any]:
    """A one-block forecast in kW, in force from a minute ago for ``minutes``."""
    now = datetime.now(UTC)
    return {
        "message_id": message_id,
        "type": "CONSUMPTION",
        "forecasted_blocks": [
            {
                "capacity": capacity_kw,
                "unit": "KW",
                "phase": "ALL",
                "start_time": (now - timedelta(minutes=1)).isoformat(),
                "end_time": (now + timedelta(minutes=minutes)).isoformat(),
            }
        ],
    }


@asynccontextmanager
async def running_grid(
    site: Site,
    *,
    port: int = SHARED_PORT,
    client_id: str | None = None,
    clock: Clock | None = None,
    watch: bool = False,
    status_interval_s: float = 30.0,
    protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5,
) -> AsyncIterator[Grid]:
    clock = clock or SystemClock()
    bus = EventBus()
    store = MemorySignalStore()
    policy = CapacityPolicy([site], watch_from=clock.now() if watch else None)
    service = CapacityService(policy, bus=bus, clock=clock, store=store, site_load=FixedSiteLoad(5_000, sessions=2))
    options = MqttOptions(
        host=SHARED_HOST,
        port=port,
        client_id=client_id or f"ems-test-{uuid.uuid4().hex[:10]}",
        status_interval_s=status_interval_s,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        keepalive_s=5,
        session_expiry_s=60,
        protocol=protocol,  # long enough for the away-and-back test, short enough not to litter the broker
    )
    changes = bus.subscribe(CapacityChanged, name="mqtt-status")
    adapter = MqttGridAdapter(service, options, changes=changes)
    stop = asyncio.Event()
    grid = Grid(site, service, adapter, bus, store, stop)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(adapter.run(stop))
        tg.create_task(service.run(stop))
        await asyncio.wait_for(adapter.connected.wait(), WAIT_S)
        try:
            yield grid
        finally:
            stop.set()


class Listener:
    """A plain MQTT client watching one site's topics (what a grid operator would see)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: asyncio.Queue[tuple[str, Any, bool]] = asyncio.Queue()

    async def expect(self, topic: str, wait_s: float = WAIT_S) -> Any:
        """The next message on ``topic`` (others are skipped), as parsed JSON."""

        async def _next() -> Any:
            while True:
                got, body, _ = await self.messages.get()
                if got == topic:
                    return body

        return await asyncio.wait_for(_next(), wait_s)

    async def expect_ack(self, topic: str, message_id: str, wait_s: float = WAIT_S) -> Any:
        """The next message on ``topic`` whose ``message_id`` is ``message_id`` (others are skipped)."""

        async def _next() -> Any:
            while True:
                body = await self.expect(topic, wait_s)
                if isinstance(body, dict) and body.get("message_id") == message_id:
                    return body

        return await asyncio.wait_for(_next(), wait_s)

    async def publish(self, topic: str, body: Any, *, retain: bool = False) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.client.publish(topic, data, qos=1, retain=retain)


@asynccontextmanager
async def listening(site_id: str, port: int = SHARED_PORT) -> AsyncIterator[Listener]:
    async with aiomqtt.Client(SHARED_HOST, port, identifier=f"listener-{uuid.uuid4().hex[:10]}") as client:
        listener = Listener(client)
        await client.subscribe(f"ems/v1/sites/{site_id}/#", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                raw = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                listener.messages.put_nowait((str(m.topic), body, m.retain))

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(pump())
            try:
                yield listener
            finally:
                task.cancel()


# ---------------------------------------------------------------- a private broker we may restart


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateBroker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        (workdir / "data").mkdir()
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            # As root mosquitto drops to its own user, which cannot enter pytest's 0700 temp dirs to save
            # its database; ``user root`` keeps it (and is ignored when the tests do not run as root).
            f"user root\npersistence true\npersistence_location {workdir / 'data'}/\n"
            "log_dest stderr\nlog_type notice\nlog_type error\nlog_type warning\nlog_type information\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            # stderr, not stdout: mosquitto block-buffers stdout into a pipe, so the ready line would not come.
            [mosquitto, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        log = self.proc.stderr
        assert log is not None
        # Wait for the broker to say it runs (its log line), not for a fixed time.
        for line in iter(log.readline, b""):
            if b" running" in line:
                # Keep draining its log so a full pipe never blocks the broker.
                threading.Thread(target=log.read, daemon=True).start()
                return
        raise RuntimeError(f"mosquitto exited with {self.proc.wait()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
