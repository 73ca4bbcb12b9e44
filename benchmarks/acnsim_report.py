"""Online in ACN-Sim: ems beside acnportal's EDF and LLF, against the offline optimum (issue 12, item 6).

    pip install -e '.[bench]'   # acnportal, cvxpy (not in the dev extra: CI does not run this)
    PYTHONPATH=. python benchmarks/acnsim_report.py --quick
    PYTHONPATH=. python benchmarks/acnsim_report.py --sessions 100,500,1000 --seeds 1 --out /tmp/acnsim.md

Every algorithm runs inside ACN-Sim's ``Simulator`` (period ``--period`` minutes), called
every period with ACN-Sim's ``Interface`` as its only view of the site: ems through
:class:`benchmarks.acnsim_ems.EmsAlgorithm`, EDF and LLF as acnportal's
``SortedSchedulingAlgo(earliest_deadline_first / least_laxity_first)`` (with a vectorised
feasibility test, same decisions: :func:`benchmarks.acnsim_sites.install_fast_feasibility`).
Instances in :mod:`benchmarks.acnsim_sites`, the optimum in :mod:`benchmarks.acnsim_offline`.

Columns: delivered energy (ACN-Sim's ``total_energy_delivered``) and as a share of the
offline optimum; sessions fully met (delivered >= ``MET_SHARE`` of the request); wall time of
each ``schedule`` call with at least one EV present (``BaseAlgorithm.solve_stats``);
violations: schedules ACN-Sim warned about ("Invalid schedule provided") plus (constraint,
period) pairs whose actual current exceeded the limit in force, with ACN-Sim's tolerances.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from acnportal.acnsim import Simulator
from acnportal.acnsim.analysis import total_energy_delivered
from acnportal.algorithms import SortedSchedulingAlgo, earliest_deadline_first, least_laxity_first

from benchmarks.acnsim_ems import EPOCH, EmsAlgorithm, has_exact_phasor_limits
from benchmarks.acnsim_offline import offline_optimum
from benchmarks.acnsim_sites import (
    SignalNetwork,
    caltech,
    dip_factors,
    events_of,
    install_fast_feasibility,
    single_phase,
    station_order,
    workplace_evs,
)

MET_SHARE = 0.99
DAY_PERIODS_H = 24


@dataclass(frozen=True, slots=True)
class Run:
    algorithm: str
    energy_kwh: float
    met: int
    call_ms: Any
    max_active: int
    warned: int
    over: int
    statuses: dict[str, int]


def build_network(kind: str, n: int, share: float) -> SignalNetwork:
    return single_phase(n, share) if kind == "single" else caltech(n)


def make_algorithm(name: str) -> Any:
    if name == "edf":
        return SortedSchedulingAlgo(earliest_deadline_first)
    if name == "llf":
        return SortedSchedulingAlgo(least_laxity_first)
    if name == "ems":
        return EmsAlgorithm()
    if name == "ems-standin":
        return EmsAlgorithm(exact=False)
    raise ValueError(name)


def simulate(name: str, kind: str, n: int, seed: int, period: float, share: float, capacity: str) -> Run:
    net = build_network(kind, n, share)
    sessions = workplace_evs(n, seed, period, station_order(net, seed))
    net.apply_signal(dip_factors(period, int(DAY_PERIODS_H * 60 / period) + 1) if capacity == "dip" else [1.0])
    alg = make_algorithm(name)
    sim = Simulator(net, alg, events_of(sessions), EPOCH, period, verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim.run()
    warned = sum(1 for w in caught if "Invalid schedule" in str(w.message))
    evs = list(sim.ev_history.values())
    met = sum(1 for ev in evs if ev.energy_delivered >= MET_SHARE * ev.requested_energy)
    stats = [s for s in alg.solve_stats if s["active_sessions"] > 0]
    call_ms = np.array([s["solve_time"] for s in stats]) * 1000.0
    currents = np.abs(net.constraint_current(sim.charging_rates))
    limits = np.array(net.history[: currents.shape[1]]).T
    if limits.shape[1] < currents.shape[1]:  # periods after the last signal update keep its limits
        pad = np.repeat(limits[:, -1:], currents.shape[1] - limits.shape[1], axis=1)
        limits = np.concatenate([limits, pad], axis=1)
    tol = np.maximum(net.violation_tolerance, net.relative_tolerance * limits)
    over = int(np.count_nonzero(currents > limits + tol))
    statuses: dict[str, int] = {}
    for s in getattr(alg, "statuses", []):
        statuses[s] = statuses.get(s, 0) + 1
    return Run(
        name,
        float(total_energy_delivered(sim)),
        met,
        call_ms,
        max((int(s["active_sessions"]) for s in stats), default=0),
        warned,
        over,
        statuses,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="100,500,1000", help="comma-separated N")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--networks", default="single,caltech", help="single, caltech")
    parser.add_argument("--capacity", default="flat,dip", help="flat, dip (grid signal 11-14 h at 50 %%)")
    parser.add_argument("--algorithms", default="edf,llf,ems", help="edf, llf, ems, ems-standin")
    parser.add_argument("--period", type=float, default=5.0, help="ACN-Sim period, minutes")
    parser.add_argument("--share", type=float, default=0.3, help="single-phase aggregate limit / EVSEs' sum")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline optimum")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 sessions, 15-min periods, seed 1")
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.seeds, args.period = "100", "1", 15.0
    install_fast_feasibility()
    algorithms = args.algorithms.split(",")
    lines = [
        f"ACN-Sim period {args.period:g} min; met = delivered >= {MET_SHARE:.0%} of the request; "
        f"ems phasor limits: {'exact (CurrentLimit)' if has_exact_phasor_limits() else 'stand-in'}",
        "",
        "| N | network | capacity | seed | algorithm | energy kWh | of offline | met | ms/call mean / p95 / max "
        "| max EVs | violations | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    out = sys.stdout
    for line in lines:
        print(line, file=out, flush=True)
    for n in [int(v) for v in args.sessions.split(",")]:
        for kind in args.networks.split(","):
            for capacity in args.capacity.split(","):
                for seed in [int(v) for v in args.seeds.split(",")]:
                    rows = _instance(n, kind, capacity, seed, args, algorithms)
                    for row in rows:
                        print(row, file=out, flush=True)
                    lines.extend(rows)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def _instance(n: int, kind: str, capacity: str, seed: int, args: Any, algorithms: list[str]) -> list[str]:
    best = float("nan")
    head = f"| {n} | {kind} | {capacity} | {seed} "
    rows = []
    if not args.no_offline:
        net = build_network(kind, n, args.share)
        sessions = workplace_evs(n, seed, args.period, station_order(net, seed))
        net.apply_signal(
            dip_factors(args.period, int(DAY_PERIODS_H * 60 / args.period) + 1) if capacity == "dip" else [1.0]
        )
        t0 = time.perf_counter()
        off = offline_optimum(net, sessions, args.period)
        best = off.energy_kwh
        met = sum(1 for s in sessions if off.per_session_kwh[s.id] >= MET_SHARE * s.energy_kwh)
        rows.append(
            f"{head}| offline ({off.solver}, {off.status}, {time.perf_counter() - t0:.1f} s) | {best:.1f} | 100 % "
            f"| {met} | | | | |"
        )
    runs = {a: simulate(a, kind, n, seed, args.period, args.share, capacity) for a in algorithms}
    for a, r in runs.items():
        ms = r.call_ms
        timing = f"{ms.mean():.1f} / {np.percentile(ms, 95):.1f} / {ms.max():.0f}" if ms.size else "-"
        verdict = ""
        if a.startswith("ems") and "edf" in runs and "llf" in runs:
            e_ok = r.energy_kwh >= runs["llf"].energy_kwh - 1e-6
            m_ok = r.met >= runs["edf"].met
            verdict = f"energy >= LLF {'yes' if e_ok else 'NO'}, met >= EDF {'yes' if m_ok else 'NO'}"
        status = "" if not r.statuses else " " + ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
        rows.append(
            f"{head}| {a}{status} | {r.energy_kwh:.1f} | {100 * r.energy_kwh / best:.2f} % | {r.met} | {timing} "
            f"| {r.max_active} | {r.warned} warned, {r.over} over | {verdict} |"
        )
    return rows


if __name__ == "__main__":
    main()
