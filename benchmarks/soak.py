"""Soak: does a running ems hold steady for many minutes of churn? Memory, tasks, file descriptors.

Runs ``ems demo --stations N --duration D`` (the whole system of ``ems serve``: OCPP server,
controller, optimizer, billing, MQTT grid operator, API; SQLite; simulated stations of both OCPP
versions, two EVSEs each, cars arriving and leaving on a clock 60x real time, prepaid cards that
run dry so later sessions are refused) in its own process and directory, and every ``--every``
seconds reads:

- from ``/proc``: the process's resident memory (VmRSS) and open file descriptors;
- from ``GET /metrics``: asyncio tasks alive, objects the garbage collector tracks, blocks
  Python's allocator holds (strings and numbers too, which the collector does not track), stations
  connected, the OCPP journal's lag, re-plans (and failures), component failures and restarts,
  events the bus dropped, the deepest bus queue; and the time ``GET /health`` takes.

After the warm-up (``--warm`` seconds: stations connecting, first sessions), it reports the first
and last readings and the least-squares slope of each (per hour of wall time), and exits 1 if the
demo failed, a component failed or restarted, a re-plan failed or the bus dropped an event.
A slope is a number to read, not a verdict: memory climbs while SQLite's page cache and the
session history grow, then flattens; tasks and file descriptors should not climb at all.

    PYTHONPATH=. python benchmarks/soak.py [--stations 50] [--duration 1200] [--every 20] [--warm 120]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
SERIES = (
    ("rss_mib", "resident MiB"),
    ("fds", "open fds"),
    ("tasks", "asyncio tasks"),
    ("gc_objects", "gc objects"),
    ("py_blocks_k", "py blocks 1000s"),
    ("connected", "stations connected"),
    ("journal_lag", "journal lag"),
    ("bus_depth", "deepest bus queue"),
    ("health_ms", "GET /health ms"),
)


@dataclass
class Reading:
    t_s: float
    values: dict[str, float] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> tuple[float, int]:
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def scrape(text: str) -> dict[str, float]:
    out: dict[str, float] = {"bus_depth": 0.0, "bus_dropped": 0.0, "failures": 0.0, "restarts": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, value = s.name, float(s.value)
            if name == "ems_asyncio_tasks":
                out["tasks"] = value
            elif name == "ems_gc_objects_tracked":
                out["gc_objects"] = value
            elif name == "ems_python_allocated_blocks":
                out["py_blocks_k"] = value / 1000
            elif name == "ems_ocpp_stations_connected":
                out["connected"] = value
            elif name == "ems_ocpp_journal_lag":
                out["journal_lag"] = value
            elif name == "ems_controller_replans_total":
                out["replans"] = value
            elif name == "ems_controller_replan_failures_total":
                out["replan_failures"] = value
            elif name == "ems_component_failures_total":
                out["failures"] += value
            elif name == "ems_component_restarts_total":
                out["restarts"] += value
            elif name == "ems_bus_events_dropped_total":
                out["bus_dropped"] += value
            elif name == "ems_bus_queue_depth":
                out["bus_depth"] = max(out["bus_depth"], value)
            elif name == "ems_ocpp_messages_received_total":
                out["received"] = out.get("received", 0.0) + value
    return out


def slope_per_h(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 3600.0 * sum((t - mt) * (v - mv) for t, v in points) / var


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=50, help="simulated stations of each OCPP version")
    ap.add_argument("--duration", type=float, default=1200.0, help="seconds the demo runs")
    ap.add_argument("--every", type=float, default=20.0, help="seconds between readings")
    ap.add_argument("--warm", type=float, default=120.0, help="seconds before the slopes start")
    args = ap.parse_args()
    api_port, ocpp_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ems-soak-"))
    log = (workdir / "demo.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ems", "demo", "--stations", str(args.stations), "--duration", str(args.duration)]
    cmd += ["--api-port", str(api_port), "--ocpp-port", str(ocpp_port)]
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{api_port}"
    readings: list[Reading] = []
    started = time.monotonic()
    print(f"soak: {2 * args.stations} stations, {args.duration:.0f} s, log {workdir / 'demo.log'}", flush=True)
    print(f"{'t s':>6} " + " ".join(f"{label:>14}" for _, label in SERIES) + f" {'replans':>8} {'received':>9}")
    with httpx.Client(timeout=10.0) as http:
        while proc.poll() is None:
            time.sleep(args.every)
            if proc.poll() is not None:
                break
            try:
                t0 = time.perf_counter()
                http.get(f"{base}/health")
                health_ms = (time.perf_counter() - t0) * 1000
                values = scrape(http.get(f"{base}/metrics").text)
                rss, fds = proc_status(proc.pid)
            except (httpx.HTTPError, FileNotFoundError, ProcessLookupError):
                continue  # not up yet, or just ending
            values.update(rss_mib=rss, fds=fds, health_ms=health_ms)
            r = Reading(time.monotonic() - started, values)
            readings.append(r)
            cells = " ".join(f"{values.get(k, float('nan')):>14.1f}" for k, _ in SERIES)
            print(
                f"{r.t_s:>6.0f} {cells} {values.get('replans', 0):>8.0f} {values.get('received', 0):>9.0f}", flush=True
            )
    code = proc.wait()
    log.close()
    tail = (workdir / "demo.log").read_text().splitlines()
    summary = [line for line in tail if re.match(r"ems demo: (demo ran|stations|sessions|billing)", line)]
    print("\n".join(summary))
    late = [r for r in readings if r.t_s >= args.warm]
    if late:
        print(f"after the warm-up ({len(late)} readings, {late[0].t_s:.0f}-{late[-1].t_s:.0f} s):")
        for key, label in SERIES:
            pts = [(r.t_s, r.values[key]) for r in late if key in r.values]
            if pts:
                lo, hi = min(v for _, v in pts), max(v for _, v in pts)
                print(
                    f"  {label:<20} first {pts[0][1]:>10.1f}  last {pts[-1][1]:>10.1f}  min {lo:>10.1f}  "
                    f"max {hi:>10.1f}  slope {slope_per_h(pts):>+10.1f} per h"
                )
    last = readings[-1].values if readings else {}
    bad = {k: last.get(k, 0.0) for k in ("failures", "restarts", "replan_failures", "bus_dropped")}
    print(f"demo exit {code}; " + ", ".join(f"{k} {v:.0f}" for k, v in bad.items()))
    return 0 if code == 0 and readings and not any(bad.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
