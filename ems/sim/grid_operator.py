"""A simulated grid operator: sends capacity forecasts and limits on a script, for ``ems demo``.

Signals go through a ``CapacitySink``: ``ServiceSink`` hands them to the capacity service
in-process (the same ``submit`` MQTT and the API use, source ``simulator``); ``MqttSink``
publishes them to the broker like a real grid operator would. The script is in seconds
after start, and every block is placed relative to the time it is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiomqtt

from ems.clock import Clock, sleep_until_set
from ems.domain.capacity import OPEN_END, CapacityBlock, CapacitySignal, CapacityUnit, SignalKind, SignalSource
from ems.domain.site import Site
from ems.grid.payload import signal_to_payload
from ems.ports.grid import CapacitySignals

log = logging.getLogger(__name__)

DEFAULT_SITE_CAPACITY_W = 100_000.0
"""What the script scales from when the site file gives the site no static limit."""


class CapacitySink(Protocol):
    async def send(
        self, site_id: str, kind: SignalKind, circuit_id: str | None, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """Deliver one signal; the ack/error body when the sink sees it at once, else ``None``."""
        ...


class ServiceSink:
    """In-process: straight into the capacity service (no broker needed)."""

    def __init__(self, signals: CapacitySignals) -> None:
        self._signals = signals

    async def send(
        self, site_id: str, kind: SignalKind, circuit_id: str | None, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        outcome = await self._signals.submit(
            payload, site_id=site_id, source=SignalSource.SIMULATOR, kind=kind, circuit_id=circuit_id
        )
        return outcome.reply


class MqttSink:
    """Over the broker, on the same topics a real grid operator publishes to (QoS 1)."""

    def __init__(self, client: aiomqtt.Client, prefix: str = "ems/v1") -> None:
        self._client = client
        self._prefix = prefix

    async def send(
        self, site_id: str, kind: SignalKind, circuit_id: str | None, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        where = f"sites/{site_id}" + (f"/circuits/{circuit_id}" if circuit_id else "")
        await self._client.publish(f"{self._prefix}/{where}/capacity/{kind.value}", json.dumps(payload), qos=1)
        return None


@dataclass(frozen=True, slots=True)
class ScriptedBlock:
    start_s: float
    """Seconds after the signal is sent."""
    end_s: float | None
    """``None``: open (a limit in force until replaced)."""
    capacity: float
    unit: CapacityUnit = CapacityUnit.W


@dataclass(frozen=True, slots=True)
class ScriptStep:
    at_s: float
    """Seconds after the simulator starts."""
    kind: SignalKind
    blocks: tuple[ScriptedBlock, ...]
    note: str
    circuit_id: str | None = None


def demo_script(site: Site, speed: float = 1.0) -> tuple[ScriptStep, ...]:
    """A forecast, then a congestion limit that expires on its own, visible in a one-minute demo
    (then silence: a site with ``stale_after_s`` under ~40 s of demo falls to its fail-safe).

    Times are real seconds of the demo; ``speed`` is how many clock seconds pass per real second
    (``ems demo`` runs a sped-up clock), so the script lands at the same real moments.
    """
    base_w = site.capacity_w or DEFAULT_SITE_CAPACITY_W
    hour = 3600.0
    return (
        ScriptStep(
            2.0 * speed,
            SignalKind.FORECAST,
            (ScriptedBlock(0, hour, 0.8 * base_w), ScriptedBlock(hour, 3 * hour, 0.6 * base_w)),
            "day-ahead forecast: 80% for an hour, then 60% for two",
        ),
        ScriptStep(
            15.0 * speed,
            SignalKind.LIMIT,
            (ScriptedBlock(0, 20.0 * speed, 0.4 * base_w),),
            f"congestion: limit to 40% for {20.0 * speed / 60:.0f} min",
        ),
    )


class GridOperatorSim:
    """Runs a script of signals for one site, then idles until stopped."""

    name = "grid-operator-sim"

    def __init__(
        self,
        sink: CapacitySink,
        site: Site,
        clock: Clock,
        script: tuple[ScriptStep, ...] | None = None,
        *,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._sink = sink
        self._site = site
        self._clock = clock
        self._script = script if script is not None else demo_script(site)
        self._report = report or log.info
        # The script's time zero is construction, so its timing does not depend on when ``run`` is scheduled.
        self._started = clock.monotonic()
        self.sent = 0
        self.replies: list[Mapping[str, Any]] = []

    def signal_for(self, step: ScriptStep) -> CapacitySignal:
        now = self._clock.now()
        blocks = tuple(
            CapacityBlock(
                start=now + timedelta(seconds=b.start_s),
                end=OPEN_END if b.end_s is None else now + timedelta(seconds=b.end_s),
                capacity=b.capacity,
                unit=b.unit,
            )
            for b in step.blocks
        )
        return CapacitySignal(
            site_id=self._site.id,
            kind=step.kind,
            blocks=blocks,
            received_at=now,
            circuit_id=step.circuit_id,
            message_id=f"sim-{uuid.uuid4().hex[:12]}",
            source=SignalSource.SIMULATOR,
        )

    async def run(self, stop: asyncio.Event) -> None:
        for step in self._script:
            wait_s = step.at_s - (self._clock.monotonic() - self._started)
            if wait_s > 0 and await sleep_until_set(self._clock, wait_s, stop):
                return
            signal = self.signal_for(step)
            reply = await self._sink.send(signal.site_id, step.kind, step.circuit_id, signal_to_payload(signal))
            self.sent += 1
            if reply is not None:
                self.replies.append(reply)
            self._report(f"grid operator -> {self._site.id}: {step.note} ({signal.message_id})")
        await stop.wait()


class MqttGridOperatorSim:
    """The simulator over a real broker: connects, runs the script, idles; a broker fault is logged, not fatal."""

    name = "grid-operator-sim"

    def __init__(
        self,
        url: str,
        site: Site,
        clock: Clock,
        *,
        username: str | None = None,
        password: str | None = None,
        report: Callable[[str], None] | None = None,
        script: tuple[ScriptStep, ...] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._tls = ssl.create_default_context() if parts.scheme == "mqtts" else None
        self._port = parts.port or (8883 if self._tls else 1883)
        self._username = username or parts.username
        self._password = password or parts.password
        self._site = site
        self._clock = clock
        self._report = report
        self._script = script

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with aiomqtt.Client(
                self._host,
                self._port,
                username=self._username,
                password=self._password,
                identifier=f"ems-grid-operator-sim-{uuid.uuid4().hex[:8]}",
                tls_context=self._tls,
            ) as client:
                sim = GridOperatorSim(MqttSink(client), self._site, self._clock, self._script, report=self._report)
                await sim.run(stop)
        except aiomqtt.MqttError as exc:
            log.warning("grid-operator simulator: broker %s:%d: %s; it sends nothing", self._host, self._port, exc)
            await stop.wait()
