"""OCPP server load benchmark: inbound messages/s and round-trip p99 with schema validation on,
against a raw websockets echo floor measured in the same run; then idle connections and RSS.

    PYTHONPATH=. python benchmarks/bench_ocpp.py [--stations 50] [--duration 15] [--idle 10000]

The server runs in its own process with the real stack: OCPP 1.6 over websockets, compiled
schema validation, the fsync'd journal, the applier writing sessions and meter samples to
SQLite. The load generator is another process: each station keeps one CALL in flight (as
OCPP-J requires) with a MeterValues-heavy mix (80 % MeterValues, 10 % StatusNotification,
10 % Heartbeat). The echo floor is a websockets server that sends every frame back, driven
by the same generator: what the machine does with no OCPP work at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

METER = {
    "connectorId": 1,
    "meterValue": [
        {
            "timestamp": "2026-01-05T08:00:00.000Z",
            "sampledValue": [
                {
                    "value": "123456",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                    "context": "Sample.Periodic",
                },
                {"value": "7360", "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"},
                {
                    "value": "32.1",
                    "measurand": "Current.Import",
                    "unit": "A",
                    "phase": "L1",
                    "context": "Sample.Periodic",
                },
                {"value": "231.2", "measurand": "Voltage", "unit": "V", "phase": "L1-N", "context": "Sample.Periodic"},
                {"value": "54", "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic", "location": "EV"},
            ],
        }
    ],
}
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}


# ------------------------------------------------------------------ servers (child processes)


def _ocpp_server(port_out: Any, data_dir: str) -> None:
    from ems.bus import EventBus
    from ems.clock import SystemClock
    from ems.config import Settings
    from ems.ocpp.runtime import OcppRuntime
    from ems.ocpp.server import OcppServerConfig
    from ems.storage.factory import open_storage

    async def main() -> None:
        storage = await open_storage(Settings(database_url=None, data_dir=Path(data_dir), _env_file=None))  # type: ignore[call-arg]
        bus = EventBus()
        config = OcppServerConfig(port=0, auto_register=True, max_frame_bytes=64 * 1024)
        runtime = await OcppRuntime.open(
            config, storage, bus, SystemClock(), journal_path=Path(data_dir) / "journal.db"
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        task = asyncio.create_task(runtime.run(stop, drain_timeout_s=2))
        await runtime.server.started.wait()
        port_out.put(runtime.server.port)
        await task
        await storage.close()

    asyncio.run(main())


def _echo_server(port_out: Any) -> None:
    async def echo(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with websockets.serve(
            echo, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol("ocpp1.6")], compression=None
        ) as server:
            port_out.put(next(iter(server.sockets)).getsockname()[1])
            await stop.wait()

    asyncio.run(main())


def start(target: Any, *args: Any) -> tuple[mp.Process, int]:
    queue: Any = mp.Queue()
    proc = mp.Process(target=target, args=(queue, *args), daemon=True)
    proc.start()
    return proc, int(queue.get(timeout=60))


def stop(proc: mp.Process) -> None:
    if proc.pid is not None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.join(timeout=30)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# ------------------------------------------------------------------ load generator


async def _station(
    url: str, sid: str, echo: bool, deadline: float, warm: float, lat: list[float], counts: list[int]
) -> None:
    async with websockets.connect(
        f"{url}/{sid}", subprotocols=[websockets.Subprotocol("ocpp1.6")], compression=None, max_size=None
    ) as ws:
        n = 0

        async def call(action: str, payload: dict[str, Any]) -> Any:
            nonlocal n
            n += 1
            uid = f"{sid}-{n}"
            t0 = time.perf_counter()
            await ws.send(json.dumps([2, uid, action, payload], separators=(",", ":")))
            answer = json.loads(await ws.recv())
            t1 = time.perf_counter()
            if t0 >= warm:
                lat.append(t1 - t0)
                counts[0] += 1
            if answer[0] != (2 if echo else 3):
                counts[1] += 1
            return answer

        await call("BootNotification", {"chargePointVendor": "bench", "chargePointModel": "load"})
        tx = 1
        if not echo:
            start = {"connectorId": 1, "idTag": "BENCH", "meterStart": 100000, "timestamp": "2026-01-05T08:00:00.000Z"}
            tx = (await call("StartTransaction", start))[2]["transactionId"]
        meter = dict(METER, transactionId=tx)
        rng = random.Random(sid)
        while time.perf_counter() < deadline:
            r = rng.random()
            if r < 0.8:
                await call("MeterValues", meter)
            elif r < 0.9:
                await call("StatusNotification", STATUS)
            else:
                await call("Heartbeat", {})


def _load(url: str, stations: int, duration_s: float, echo: bool, out: Any) -> None:
    async def main() -> None:
        warm = time.perf_counter() + 2.0  # connections, boots and starts are not measured
        deadline = warm + duration_s
        lat: list[float] = []
        counts = [0, 0]
        await asyncio.gather(
            *(_station(url, f"BENCH-{i:05d}", echo, deadline, warm, lat, counts) for i in range(stations))
        )
        out.put((counts[0] / duration_s, sorted(lat), counts[1]))

    asyncio.run(main())


def run_load(port: int, stations: int, duration_s: float, echo: bool) -> dict[str, float]:
    queue: Any = mp.Queue()
    proc = mp.Process(target=_load, args=(f"ws://127.0.0.1:{port}", stations, duration_s, echo, queue))
    proc.start()
    rate, lat, errors = queue.get(timeout=duration_s + 120)
    proc.join()
    return {
        "msg_per_s": rate,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "errors": errors,
    }


# ------------------------------------------------------------------ idle connections


def _idle(port: int, count: int, hold: Any, done: Any) -> None:
    async def main() -> None:
        sem = asyncio.Semaphore(200)
        conns: list[Any] = []

        async def one(i: int) -> None:
            async with sem:
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/IDLE-{i:05d}",
                    subprotocols=[websockets.Subprotocol("ocpp1.6")],
                    compression=None,
                    open_timeout=120,
                )
                conns.append(ws)

        await asyncio.gather(*(one(i) for i in range(count)))
        hold.put(len(conns))
        await asyncio.get_running_loop().run_in_executor(None, done.get)
        for ws in conns:
            await ws.close()

    asyncio.run(main())


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def idle_connections(count: int) -> dict[str, float]:
    limit = raise_nofile(count + 1024)  # children inherit it
    if limit < count + 100:
        sys.exit(f"ulimit -n is {limit}; {count} connections need more (raise the hard limit)")
    with tempfile.TemporaryDirectory() as data:
        server, port = start(_ocpp_server, data)
        time.sleep(1.0)  # let the server settle before the baseline reading
        base = rss_kib(server.pid or 0)
        hold: Any = mp.Queue()
        done: Any = mp.Queue()
        t0 = time.perf_counter()
        client = mp.Process(target=_idle, args=(port, count, hold, done))
        client.start()
        held = hold.get(timeout=1800)
        connect_s = time.perf_counter() - t0
        time.sleep(3.0)  # let the server finish booking-keeping for the last handshakes
        full = rss_kib(server.pid or 0)
        done.put(True)
        client.join(timeout=120)
        stop(server)
    return {
        "connections": held,
        "connect_s": connect_s,
        "rss_base_mib": base / 1024,
        "rss_mib": full / 1024,
        "kib_per_connection": (full - base) / held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=50, help="concurrent stations in the throughput test")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per throughput run")
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections to hold (0: skip)")
    parser.add_argument("--skip-load", action="store_true", help="only the idle-connection test")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, websockets {websockets.__version__}")
    if not args.skip_load:
        load(args.stations, args.duration)
    if args.idle:
        idle = idle_connections(args.idle)
        print(
            f"idle: {idle['connections']:.0f} connections in {idle['connect_s']:.1f} s; server RSS "
            f"{idle['rss_base_mib']:.0f} MiB -> {idle['rss_mib']:.0f} MiB, "
            f"{idle['kib_per_connection']:.1f} KiB per connection"
        )


def load(stations: int, duration_s: float) -> None:
    echo, port = start(_echo_server)
    floor = run_load(port, stations, duration_s, echo=True)
    stop(echo)
    with tempfile.TemporaryDirectory() as data:
        server, port = start(_ocpp_server, data)
        ocpp = run_load(port, stations, duration_s, echo=False)
        stop(server)
    print(f"{'':18}{'msg/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, r in (("echo floor", floor), ("ems OCPP server", ocpp)):
        print(f"{name:18}{r['msg_per_s']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8.0f}")
    print(f"OCPP / floor throughput: {ocpp['msg_per_s'] / floor['msg_per_s']:.2f}")


if __name__ == "__main__":
    main()
