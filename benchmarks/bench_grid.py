"""Grid-capacity signals over MQTT: latency to the capacity event, and sustained throughput.

Against the real Mosquitto (127.0.0.1:1883 unless ``--port``), with the real capacity
service persisting every signal to an embedded SQLite store (the default deployment):

1. floor: raw aiomqtt QoS 1 publish -> receive round trip, one message at a time;
2. latency: one forecast at a time (``--latency-messages``), timed from the moment the
   adapter has the message (``MqttGridAdapter.handle`` entered) to the ``CapacityChanged``
   event on the bus, and end to end from before ``publish`` to that event;
3. throughput: ``--rate`` signals/s for ``--seconds`` from one publisher; every message
   must be accepted (no loss) and the backlog must drain;
4. parse: the pure ``parse_signal`` alone, signals/s on one core.

    PYTHONPATH=. python benchmarks/bench_grid.py [--rate 1000] [--seconds 5] [--latency-messages 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from ems.bus import EventBus
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain.capacity import SignalSource
from ems.domain.events import CapacityChanged, DomainEvent
from ems.domain.site import Site
from ems.grid.capacity import CapacityPolicy
from ems.grid.mqtt import MqttGridAdapter, MqttOptions
from ems.grid.payload import parse_signal
from ems.services.capacity import CapacityService
from ems.storage.factory import open_storage

HOST = "127.0.0.1"
PROTOCOL = aiomqtt.ProtocolVersion.V5
"""Every client in the run speaks MQTT 5, as ems does, so the floor pays the same packet parsing."""


def body(i: int, now: datetime) -> bytes:
    start = now - timedelta(minutes=1)
    return json.dumps(
        {
            "message_id": f"b-{i}",
            "type": "CONSUMPTION",
            "forecasted_blocks": [
                {
                    "capacity": 50 + (i % 40),
                    "unit": "KW",
                    "phase": "ALL",
                    "start_time": (start + timedelta(minutes=15 * k)).isoformat(),
                    "end_time": (start + timedelta(minutes=15 * (k + 1))).isoformat(),
                }
                for k in range(4)
            ],
        }
    ).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, ms: list[float]) -> dict[str, Any]:
    return {
        "what": name,
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


async def floor_round_trip(port: int, n: int) -> list[float]:
    topic = f"bench/{uuid.uuid4().hex}/floor"
    out: list[float] = []
    async with (
        aiomqtt.Client(HOST, port, identifier=f"bench-pub-{uuid.uuid4().hex[:8]}", protocol=PROTOCOL) as pub,
        aiomqtt.Client(HOST, port, identifier=f"bench-sub-{uuid.uuid4().hex[:8]}", protocol=PROTOCOL) as sub,
    ):
        await sub.subscribe(topic, qos=1)
        messages = sub.messages
        now = datetime.now(UTC)
        for i in range(n):
            t0 = time.perf_counter()
            await pub.publish(topic, body(i, now), qos=1)
            await anext(aiter(messages))
            out.append((time.perf_counter() - t0) * 1000)
    return out


class Harness:
    def __init__(self, site_id: str, port: int, storage: Any) -> None:
        self.site = Site(id=site_id, capacity_w=200_000.0, failsafe_capacity_w=20_000.0)
        self.bus = EventBus()
        self.service = CapacityService(
            CapacityPolicy([self.site]), bus=self.bus, clock=SystemClock(), store=storage.signals
        )
        options = MqttOptions(host=HOST, port=port, client_id=f"bench-ems-{uuid.uuid4().hex[:8]}")
        self.adapter = MqttGridAdapter(self.service, options)
        self.arrived: dict[str, float] = {}
        self.emitted: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Event] = {}
        original = self.adapter.handle
        publish = self.bus.publish

        async def timed_publish(event: DomainEvent) -> None:
            await publish(event)
            if isinstance(event, CapacityChanged) and event.message_id is not None:
                self.emitted[event.message_id] = time.perf_counter()
                if (waiter := self.waiting.pop(event.message_id, None)) is not None:
                    waiter.set()

        self.bus.publish = timed_publish  # type: ignore[method-assign]

        async def timed_handle(topic: str, payload: bytes, *, retained: bool = False) -> None:
            t = time.perf_counter()
            # The id is read after the timestamp, so the scan is inside the measured span (a few us).
            start = payload.index(b'"message_id": "') + 15
            self.arrived[payload[start : payload.index(b'"', start)].decode()] = t
            await original(topic, payload, retained=retained)

        self.adapter.handle = timed_handle  # type: ignore[method-assign]
        self.topic = f"ems/v1/sites/{site_id}/capacity/forecast"

    def waiter(self, message_id: str) -> asyncio.Event:
        self.waiting[message_id] = asyncio.Event()
        return self.waiting[message_id]


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    floor = await floor_round_trip(args.port, args.latency_messages)
    results.append(summary("floor: raw aiomqtt QoS 1 publish -> receive", floor))
    results.append(await floor_throughput(args.port, args.rate, args.seconds))

    with tempfile.TemporaryDirectory() as tmp:
        storage = await open_storage(Settings(database_url=None, data_dir=Path(tmp)))
        h = Harness(f"bench-{uuid.uuid4().hex[:8]}", args.port, storage)
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(h.adapter.run(stop))
                tg.create_task(h.service.run(stop))  # ticker and batched audit writer, as in ems serve
                await asyncio.wait_for(h.adapter.connected.wait(), 5)
                async with aiomqtt.Client(HOST, args.port, identifier=f"bench-op-{uuid.uuid4().hex[:8]}") as op:
                    results.extend(await latency(h, op, args.latency_messages))
                results.append(await throughput(h, args.port, args.rate, args.seconds))
                stop.set()
        finally:
            await storage.close()
    results.append(parse_rate(args.parse_messages))
    return results


async def latency(h: Harness, op: aiomqtt.Client, n: int) -> list[dict[str, Any]]:
    end_to_end: list[float] = []
    now = datetime.now(UTC)
    for i in range(n):
        mid = f"b-{i}"
        seen = h.waiter(mid)
        t0 = time.perf_counter()
        await op.publish(h.topic, body(i, now), qos=1)
        await asyncio.wait_for(seen.wait(), 10)
        end_to_end.append((h.emitted[mid] - t0) * 1000)
    inside = [(h.emitted[f"b-{i}"] - h.arrived[f"b-{i}"]) * 1000 for i in range(n)]
    return [
        summary("ems: message at the adapter -> CapacityChanged on the bus", inside),
        summary("end to end: publish -> CapacityChanged (floor + ems)", end_to_end),
    ]


async def publish_paced(port: int, topic: str, rate: int, total: int, offset: int) -> float:
    """Publish ``total`` forecasts at ``rate``/s, QoS 1, up to 100 in flight; the seconds it took."""
    now = datetime.now(UTC)
    payloads = [body(offset + i, now) for i in range(total)]
    window = asyncio.Semaphore(100)
    quiet = logging.getLogger("bench.publisher")
    quiet.setLevel(logging.ERROR)  # aiomqtt warns about every publish beyond 10 in flight: that is the point here
    async with aiomqtt.Client(HOST, port, identifier=f"bench-op-{uuid.uuid4().hex[:8]}", logger=quiet) as op:

        async def one(payload: bytes) -> None:
            try:
                await op.publish(topic, payload, qos=1)
            finally:
                window.release()

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i, payload in enumerate(payloads):
                if (ahead := t0 + i / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(ahead)
                await window.acquire()
                tg.create_task(one(payload))
        return time.perf_counter() - t0


async def spawn_publisher(port: int, topic: str, rate: int, seconds: float, offset: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--publisher",
        topic,
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--offset",
        str(offset),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return float(out.decode().strip() or "nan")


async def floor_throughput(port: int, rate: int, seconds: float) -> dict[str, Any]:
    """The same stream into a bare aiomqtt subscriber that answers each message with a QoS 1 reply
    (as ems acks), nothing else: what the MQTT client stack alone sustains here."""
    total = int(rate * seconds)
    topic = f"bench/{uuid.uuid4().hex}/floor-stream"
    quiet = logging.getLogger("bench.floor")
    quiet.setLevel(logging.ERROR)
    arrivals: list[float] = []
    async with aiomqtt.Client(
        HOST,
        port,
        identifier=f"bench-floor-{uuid.uuid4().hex[:8]}",
        logger=quiet,
        max_inflight_messages=50,
        protocol=PROTOCOL,
    ) as sub:
        await sub.subscribe(topic, qos=1)
        window = asyncio.Semaphore(50)

        async def reply() -> None:
            try:
                await sub.publish(f"{topic}/ack", b"{}", qos=1)
            finally:
                window.release()

        async def consume() -> None:
            async with asyncio.TaskGroup() as tg:
                async for _ in sub.messages:
                    arrivals.append(time.perf_counter())
                    await window.acquire()
                    tg.create_task(reply())
                    if len(arrivals) == total:
                        return

        async with asyncio.TaskGroup() as tg:
            consumer = tg.create_task(consume())
            published = await spawn_publisher(port, topic, rate, seconds, 0)
            await asyncio.wait_for(consumer, 120)
    busy_s = arrivals[-1] - arrivals[0]
    return {
        "what": f"floor: {total} offered at {rate}/s into a bare aiomqtt subscriber replying QoS 1",
        "published_s": round(published, 2),
        "first_to_last_arrival_s": round(busy_s, 2),
        "received_per_s": round(total / busy_s, 1),
    }


async def throughput(h: Harness, port: int, rate: int, seconds: float) -> dict[str, Any]:
    """The grid operator is another process (as in life), so it does not share ems's event loop or core."""
    total = int(rate * seconds)
    offset = 1_000_000
    accepted_before = h.service.accepted
    last = h.waiter(f"b-{offset + total - 1}")
    t0 = time.perf_counter()
    published = await spawn_publisher(port, h.topic, rate, seconds, offset)
    await asyncio.wait_for(last.wait(), 120)
    drained = time.perf_counter() - t0
    accepted = h.service.accepted - accepted_before
    first_arrival = h.arrived[f"b-{offset}"]
    busy_s = h.emitted[f"b-{offset + total - 1}"] - first_arrival
    lags = [(h.emitted[m] - h.arrived[m]) * 1000 for i in range(total) if (m := f"b-{offset + i}") in h.emitted]
    return {
        "what": f"throughput: {total} signals offered at {rate}/s by a separate publisher process",
        "published_s": round(published, 2),
        "first_arrival_to_last_event_s": round(busy_s, 2),
        "processed_per_s": round(accepted / busy_s, 1),
        "wall_s_incl_publisher_start": round(drained, 2),
        "accepted": accepted,
        "lost": total - accepted,
        "rejected": h.service.rejected,
        "arrival_to_event_p99_ms": round(pct(lags, 0.99), 3) if lags else None,
    }


def parse_rate(n: int) -> dict[str, Any]:
    site = Site(id="depot")
    now = datetime.now(UTC)
    payloads = [body(i, now) for i in range(n)]
    t0 = time.perf_counter()
    for payload in payloads:
        parse_signal(payload, site_id="depot", site=site, received_at=now, source=SignalSource.MQTT)
    elapsed = time.perf_counter() - t0
    return {
        "what": f"parse_signal alone ({n} forecasts of 4 blocks)",
        "per_s": round(n / elapsed),
        "us_each": round(elapsed / n * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-messages", type=int, default=500)
    parser.add_argument("--parse-messages", type=int, default=20_000)
    parser.add_argument("--publisher", metavar="TOPIC", help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        total = int(args.rate * args.seconds)
        print(asyncio.run(publish_paced(args.port, args.publisher, args.rate, total, args.offset)))
        return
    for row in asyncio.run(run(args)):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
