"""Closed-loop benchmark: a grid operator halves a site's capacity over MQTT; how fast do N
simulated stations hold lower profiles, and does the site ever go over its limit?

    PYTHONPATH=. python benchmarks/bench_controller.py --stations 200 [--watch 40]

One process runs the real stack (``build_system``: OCPP server on 127.0.0.1:0, controller,
optimizer, capacity service, MQTT adapter on the shared Mosquitto at 127.0.0.1:1883, SQLite)
and N simulated stations (half OCPP 1.6, half 2.0.1, one 3-phase 32 A EVSE each), each in
a transaction with a car that takes all it is allowed. The site's capacity binds (7 kW per
EVSE against 22 kW each could draw); once the first plan is in force, the benchmark
publishes a limit of half that capacity on ``ems/v1/sites/{site}/capacity/limit``.

The stations apply exactly the composite of what they accepted (``ems.domain.composite``:
every period, stack levels, defaults). The harness records every profile a station
installs and reports:

- per EVSE whose limit had to fall (lower than before the drop once the drop's own re-plan
  was dispatched; later re-plans move limits for other reasons, e.g. a car that draws less
  than allotted): time from the publish until it held a lower profile (p50, p95, max), and
  until the sum over all EVSEs was under the new limit;
- over capacity: at every install and every 50 ms, the sum of what the stations apply
  *now* against the capacity in force (the old one until the publish; the new one once the
  sum first came under it), and, stricter, the sum at every later period boundary of what
  they hold (20 minutes ahead, as if nothing were ever sent again), once the first plan is
  in force and at the end of the watch after the drop: a period boundary that would take
  the site over is reported without waiting for it in wall time (at the moment the sum
  first came under the new limit the same check is reported apart, as
  ``over_future_when_under``: cuts of later periods may still be on their way then);
- the re-plan at N sessions: solve time and status (OPTIMAL / FEASIBLE).

Timings are wall time on a shared, loaded machine, so two floors are measured in the same
run and reported next to them: the OCPP round trip of an idle WebSocket on the same host,
and the transport floor of the drop: one command to each station that installed a profile
between the publish and the drop's re-plan, sent at once through the same server to the same
simulated stations (``p95_over_floor``: the p95 above divided by the time until all of those
were answered).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from websockets.exceptions import InvalidStatus

from ems.app import Runtime, build_system
from ems.bus import EventBus
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain import composite
from ems.domain.card import Card
from ems.domain.commands import GetCompositeSchedule
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.domain.station import OcppVersion
from ems.sim.ev import Ev
from ems.sim.profiles import Profile, effective_limit_w
from ems.sim.station import SimStation
from ems.storage.factory import open_storage
from ems.supervisor import run_components

EVSE = EvseSpec(1, phases=3, max_current_a=32)
MAX_W = 32 * 230 * 3
PER_EVSE_W = 7_000.0
TOL_W = 1.0


def car() -> Ev:
    return Ev(capacity_wh=80_000, soc=0.1, max_power_w=22_000)


async def start(s: SimStation) -> None:
    """Start a transaction; an Authorize that times out in a busy server (storage 2 s) is tried again."""
    for attempt in range(5):
        try:
            await s.start(1, f"D-{s.id}", car())
            return
        except PermissionError:
            if attempt == 4:
                raise
            await asyncio.sleep(1.0)


async def connect(s: SimStation) -> None:
    """Connect; a handshake refused with 503 (the station look-up timed out in a busy server) is tried again."""
    for attempt in range(5):
        try:
            await s.connect()
            return
        except InvalidStatus as error:
            if error.response.status_code != 503 or attempt == 4:
                raise
            await asyncio.sleep(1.0)


async def transport_floor(control: Any, station_ids: list[str]) -> dict[str, float]:
    """Seconds until half and until all of ``station_ids`` answered one command sent to each at once."""
    command = GetCompositeSchedule(evse_id=1, duration_s=60)
    start = time.perf_counter()
    done: list[float] = []

    async def one(station_id: str) -> None:
        await control.execute(station_id, command)
        done.append(time.perf_counter() - start)

    await asyncio.gather(*(one(i) for i in station_ids))
    return {"commands": len(station_ids), "half_answered": pct(done, 0.5), "all_answered": max(done)}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Harness:
    """Follows what every station holds; checks the site against the capacity in force."""

    def __init__(self, stations: list[SimStation], capacity_w: float) -> None:
        self.stations = stations
        self.capacity_w = capacity_w
        self.limit_now: dict[str, float] = {}
        self.installs: dict[str, list[tuple[float, float]]] = {s.id: [] for s in stations}
        """Per station: (perf_counter, limit W now) after each install."""
        self.over_now_s = 0.0
        self.over_future: list[str] = []
        self.max_over_w = 0.0
        self._last_check: float | None = None
        self._was_over = False
        for s in stations:
            self._hook(s)

    def applied(self, s: SimStation, at: datetime) -> float:
        evse = s.evses[1]
        tx = evse.tx
        w = effective_limit_w(
            s.profiles,
            evse_id=1,
            now=at,
            tx_id=None if tx is None else tx.id,
            tx_started_at=None if tx is None else tx.started_at,
        )
        return MAX_W if w is None else min(w, MAX_W)

    def _hook(self, s: SimStation) -> None:
        original = s.install_profile

        def install(profile: Profile) -> None:
            original(profile)
            now = datetime.now(UTC)
            self.limit_now[s.id] = self.applied(s, now)
            self.installs[s.id].append((time.perf_counter(), self.limit_now[s.id]))
            self.check_now()

        s.install_profile = install  # type: ignore[method-assign]

    def reset(self) -> None:
        """Start counting seconds over capacity afresh (from the first plan in force; from the new limit)."""
        self.over_now_s = 0.0
        self.max_over_w = 0.0
        self._last_check = None
        self._was_over = False

    def total_now(self) -> float:
        return sum(self.limit_now.get(s.id, MAX_W) for s in self.stations)

    def refresh(self) -> None:
        now = datetime.now(UTC)
        for s in self.stations:
            self.limit_now[s.id] = self.applied(s, now)

    def check_now(self) -> None:
        """Integrate seconds over capacity between consecutive checks."""
        t = time.perf_counter()
        over = self.total_now() - self.capacity_w
        if self._last_check is not None and self._was_over:
            self.over_now_s += t - self._last_check
        self._was_over = over > TOL_W
        if self._was_over:
            self.max_over_w = max(self.max_over_w, over)
        self._last_check = t

    def check_future(self, minutes: float = 20) -> None:
        now = datetime.now(UTC)
        points: set[datetime] = set()
        for s in self.stations:
            points |= composite.breakpoints(s.profiles, now, now, now + timedelta(minutes=minutes))
        for at in sorted(points):
            total = sum(self.applied(s, at) for s in self.stations)
            if total > self.capacity_w + TOL_W:
                # Which stations draw more then than now (the ones taking the site over), and what they hold.
                rising = [s for s in self.stations if self.applied(s, at) > self.applied(s, now) + TOL_W][:3]
                detail = "; ".join(
                    f"{s.id} {self.applied(s, now):.0f} -> {self.applied(s, at):.0f} W holding "
                    + ", ".join(f"{p.purpose} #{p.id} {p.start_at} {p.duration_s}s" for p in s.profiles)
                    for s in rising
                )
                self.over_future.append(f"{at.isoformat()}: {total:.0f} W > {self.capacity_w:.0f} W ({detail})")


async def run(n: int, watch_s: float, mqtt_host: str, mqtt_port: int) -> dict[str, Any]:
    site_id = f"bench-{uuid.uuid4().hex[:8]}"
    capacity_w = PER_EVSE_W * n
    ids = [f"B{i:04d}" for i in range(n)]
    site = Site(
        id=site_id,
        capacity_w=capacity_w,
        failsafe_capacity_w=1_000.0 * n,  # below 6 A per EVSE: idle EVSEs pause
        stations=tuple(StationSpec(i, evses=(EVSE,)) for i in ids),
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-controller-"))
    settings = Settings(  # type: ignore[call-arg]
        api_port=0,
        ocpp_port=0,
        ocpp_auto_register=True,
        ocpp_require_password=False,  # the simulated stations register themselves, without passwords
        data_dir=tmp,
        mqtt_url=f"mqtt://{mqtt_host}:{mqtt_port}",
        mqtt_client_id=f"bench-{uuid.uuid4().hex[:8]}",
        _env_file=None,
    )
    storage = await open_storage(settings)
    clock = SystemClock()
    runtime = Runtime(settings=settings, sites=(site,), clock=clock, bus=EventBus(), storage=storage)
    for i in ids:  # one driver per car: billing refuses a card that already runs too many sessions
        await storage.cards.add(Card(uid=f"D-{i}"))
    system = await build_system(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(run_components(system.components(), stop))
    out: dict[str, Any] = {"stations": n, "capacity_w": capacity_w}
    try:
        await asyncio.wait_for(system.ocpp.started.wait(), 30)
        stations = [
            SimStation(i, system.ocpp.url, OcppVersion.V16 if k % 2 == 0 else OcppVersion.V201, evses=1, clock=clock)
            for k, i in enumerate(ids)
        ]
        harness = Harness(stations, capacity_w)
        t = time.perf_counter()
        for batch in range(0, n, 50):
            await asyncio.gather(*(connect(s) for s in stations[batch : batch + 50]))
            await asyncio.gather(*(s.boot() for s in stations[batch : batch + 50]))
        for batch in range(0, n, 20):
            await asyncio.gather(*(start(s) for s in stations[batch : batch + 20]))
        out["setup_s"] = time.perf_counter() - t
        controller = system.controller

        # The floor: an OCPP round trip (Heartbeat) on an idle link of this process, now.
        rtts = []
        for s in stations[:20]:
            a = time.perf_counter()
            await s.heartbeat()
            rtts.append(time.perf_counter() - a)
        out["heartbeat_rtt_ms_p50"] = statistics.median(rtts) * 1000

        # First plan in force: every station holds a TxProfile for its transaction.
        def in_force() -> bool:
            return all(
                s.evses[1].tx is not None
                and any(p.purpose == composite.TX and p.transaction_id == s.evses[1].tx.id for p in s.profiles)
                for s in stations
            )

        deadline = time.perf_counter() + 300
        while not in_force():
            if time.perf_counter() > deadline:
                raise RuntimeError("the first plan was not in force within 300 s")
            await asyncio.sleep(0.2)
        out["first_plan_in_force_s"] = time.perf_counter() - t
        plan = controller.plan(site_id)
        assert plan is not None
        out["replan_before"] = {"status": plan.status, "solve_s": plan.solve_s, "sessions": plan.sessions}
        harness.refresh()
        harness.reset()
        out["load_before_w"] = harness.total_now()
        harness.check_future()
        watch_before = time.perf_counter() + 5
        while time.perf_counter() < watch_before:
            harness.check_now()
            await asyncio.sleep(0.05)
        out["over_before_drop_s"] = harness.over_now_s
        out["over_before_drop_future"] = len(harness.over_future)

        # The drop, over MQTT.
        new_w = capacity_w / 2
        before = {s.id: harness.limit_now[s.id] for s in stations}
        async with aiomqtt.Client(mqtt_host, mqtt_port, identifier=f"bench-dso-{uuid.uuid4().hex[:8]}") as client:
            body = {
                "message_id": f"drop-{uuid.uuid4().hex[:6]}",
                "forecasted_blocks": [
                    {
                        "capacity": new_w / 1000,
                        "unit": "KW",
                        "phase": "ALL",
                        "start_time": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
                    }
                ],
            }
            published = time.perf_counter()
            published_utc = clock.now()
            await client.publish(f"ems/v1/sites/{site_id}/capacity/limit", json.dumps(body), qos=1)
        under_at: float | None = None
        after_drop_plan: dict[str, float] | None = None
        settled_at = published + watch_s
        watch_until = published + watch_s
        while time.perf_counter() < watch_until:
            record = controller.plans.get(site_id)
            if after_drop_plan is None and record is not None and record.planned_at >= published_utc:
                # The drop's own re-plan is dispatched (a record is kept once its round is done): what each
                # station holds now is what the drop asked of it; later re-plans move limits for other reasons.
                after_drop_plan = {s.id: harness.limit_now[s.id] for s in stations}
                settled_at = time.perf_counter()
            if under_at is None and harness.total_now() <= new_w + TOL_W:
                under_at = time.perf_counter()
                harness.capacity_w = new_w  # from here on, the new limit is the one to hold
                harness.reset()
                # What the stations hold at this moment, later periods included: the cuts of later periods may
                # still be on their way (the ones that lower what is drawn *now* go first), so this is reported
                # apart; the check that counts is the one below, once the drop has been answered.
                harness.over_future.clear()
                harness.check_future()
                out["over_future_when_under"] = len(harness.over_future)
                harness.over_future.clear()
            harness.check_now()
            await asyncio.sleep(0.05)
        harness.check_future()
        lowered: list[float] = []
        settled = after_drop_plan if after_drop_plan is not None else harness.limit_now
        out["lowered_by"] = "the drop's re-plan" if after_drop_plan is not None else "the end of the watch"
        for s in stations:
            if settled[s.id] >= before[s.id] - TOL_W:
                continue  # the drop did not need it lower (a paused or already low EVSE)
            first = next(ts for ts, w in harness.installs[s.id] if ts >= published and w < before[s.id] - TOL_W)
            lowered.append(first - published)
        out["evses_lowered"] = len(lowered)
        out["lowered_s"] = {
            "p50": pct(lowered, 0.5),
            "p95": pct(lowered, 0.95),
            "max": max(lowered, default=float("nan")),
        }
        out["sum_under_new_limit_s"] = None if under_at is None else under_at - published
        out["over_after_s"] = harness.over_now_s if under_at is not None else None
        out["max_over_after_w"] = harness.max_over_w
        out["over_after_future"] = harness.over_future[:5]
        out["load_after_w"] = harness.total_now()
        plan = controller.plan(site_id)
        assert plan is not None
        out["replan_after"] = {"status": plan.status, "solve_s": plan.solve_s, "sessions": plan.sessions}
        # The transport floor, now: one command to each station that installed a profile between the publish and
        # the drop's re-plan (the proportional cuts and the plan's profiles), sent at once through the same server
        # to the same simulated stations (a read-only GetCompositeSchedule each), answered in this time.
        touched = [s.id for s in stations if any(published <= ts <= settled_at for ts, _ in harness.installs[s.id])]
        out["drop_profiles_installed"] = sum(
            1 for s in stations for ts, _ in harness.installs[s.id] if published <= ts <= settled_at
        )
        out["drop_stations_touched"] = len(touched)
        floor = await transport_floor(system.ocpp.control, touched or [stations[0].id])
        out["transport_floor_s"] = floor
        out["p95_over_floor"] = out["lowered_s"]["p95"] / floor["all_answered"] if floor["all_answered"] else None
        stats = controller.stats()
        out["profiles"] = {
            "sent": stats.sent,
            "accepted": stats.accepted,
            "refused": stats.refused,
            "timeouts": stats.timeouts,
            "held": stats.held,
        }
        for s in stations:
            await s.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await storage.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--watch", type=float, default=40.0, help="seconds to watch after the drop")
    parser.add_argument("--mqtt", default="127.0.0.1:1883")
    args = parser.parse_args()
    host, port = args.mqtt.split(":")
    load = os.getloadavg()
    result = asyncio.run(run(args.stations, args.watch, host, int(port)))
    result["loadavg_1_5_15"] = load
    print(json.dumps(result, indent=2, default=str))
    ok = (
        result["sum_under_new_limit_s"] is not None
        and result["over_before_drop_s"] == 0
        and result["over_after_s"] == 0
        and not result["over_after_future"]
        and result["over_before_drop_future"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
