"""Record the snapshots ems sees in one ACN-Sim run, and replay them through a fresh planner.

    PYTHONPATH=. python benchmarks/acnsim_replay.py record 500 caltech flat /tmp/c500flat.pkl
    PYTHONPATH=. python benchmarks/acnsim_replay.py replay /tmp/c500flat.pkl --json /tmp/after.json
    PYTHONPATH=. python benchmarks/acnsim_replay.py replay /tmp/c500flat.pkl --compare /tmp/after.json

A replay plans the recorded snapshots in order with one :class:`RollingPlanner` (warm, as in
ACN-Sim), so two versions of the optimizer can be timed on the same LPs, alternating, on a
noisy machine: wall and CPU time per re-plan, HiGHS's time and iterations. Every plan's LP
objective is kept (``--json``) and checked against another run's (``--compare``: same LPs,
same optima within 1e-6 relative, whatever the warm start). Times in docs/benchmarks/optimizer.md
(fourth round).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from typing import Any

import numpy as np

from benchmarks import acnsim_ems, acnsim_report
from ems.optimizer.mpc import RollingPlanner

OBJECTIVE_RTOL = 1e-6


def record(n: int, network: str, capacity: str, path: str, seed: int = 1) -> None:
    snapshots: list[Any] = []
    snapshot_of = acnsim_ems.snapshot_of

    def keep(*args: Any, **kwargs: Any) -> Any:
        snap = snapshot_of(*args, **kwargs)
        snapshots.append(snap)
        return snap

    acnsim_ems.snapshot_of = keep  # type: ignore[assignment]
    try:
        run = acnsim_report.simulate("ems", network, n, seed, 5.0, 0.3, capacity)
    finally:
        acnsim_ems.snapshot_of = snapshot_of  # type: ignore[assignment]
    with open(path, "wb") as f:
        pickle.dump(snapshots, f)
    print(f"{len(snapshots)} snapshots; {run.energy_kwh:.1f} kWh, {run.met} met, {run.call_ms.mean():.1f} ms/call")


def replay(path: str, out: str | None, compare: str | None) -> None:
    with open(path, "rb") as f:
        snapshots = pickle.load(f)  # our own recording (pickle runs code: never load one from elsewhere)
    planner = RollingPlanner()
    wall, cpu, highs, iterations, objective, statuses = [], [], [], [], [], []
    for snap in snapshots:
        w0, c0 = time.perf_counter(), time.process_time()
        plan = planner.plan(snap)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        highs.append(plan.solve_s)
        iterations.append(int(plan.stats.get("iterations", 0)))
        objective.append(float(plan.objective["lp"]))
        statuses.append(str(plan.status))
    ms = 1000.0
    print(
        f"{len(snapshots)} plans: wall {np.mean(wall) * ms:.1f} ms (p95 {np.percentile(wall, 95) * ms:.1f}), "
        f"CPU {np.mean(cpu) * ms:.1f}, HiGHS {np.mean(highs) * ms:.1f}, iterations {np.mean(iterations):.0f} "
        f"(max {max(iterations)}), statuses {sorted(set(statuses))}"
    )
    if out:
        with open(out, "w") as f:
            json.dump({"objective": objective, "iterations": iterations, "statuses": statuses}, f)
    if compare:
        with open(compare) as f:
            other = np.asarray(json.load(f)["objective"])
        mine = np.asarray(objective)
        rel = np.abs(mine - other) / np.maximum(1.0, np.abs(other))
        print(f"objective vs {compare}: max rel. diff {rel.max():.1e}, {int((rel > OBJECTIVE_RTOL).sum())} plans over")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("sessions", type=int)
    rec.add_argument("network", choices=("single", "caltech"))
    rec.add_argument("capacity", choices=("flat", "dip"))
    rec.add_argument("path")
    rep = sub.add_parser("replay")
    rep.add_argument("path")
    rep.add_argument("--json", help="write every plan's objective here")
    rep.add_argument("--compare", help="check every plan's objective against this --json file")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.sessions, args.network, args.capacity, args.path)
    else:
        replay(args.path, args.json, args.compare)


if __name__ == "__main__":
    main()
