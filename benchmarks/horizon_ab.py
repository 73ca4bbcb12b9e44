"""Horizon layouts A/B in one process: re-plan times side by side on the same snapshots.

    PYTHONPATH=. python benchmarks/horizon_ab.py --seed 1 --share 0.15 --exact 4,8 [--slots-from 28 --slots-to 64]

Replays the day once with the first layout; at every re-plan (every slot from
``--slots-from`` to ``--slots-to``) each layout's own warm-started planner plans the same
snapshot, in turn order rotated every slot, and bare HiGHS solves the full uniform LP of it
(cold, every row). Prints mean / p95 / max ms per planner and the p95 ratio to bare HiGHS:
on a shared machine the ratios hold better than the absolute times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.horizon import Horizon
from ems.optimizer.matrices import build
from ems.optimizer.mpc import RollingPlanner, roll
from ems.optimizer.plan import Options
from ems.optimizer.problem import compile_problem


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--share", type=float, default=0.15)
    parser.add_argument("--exact", default="4,8", help="exact slots of each layout (levels of 2, blocks up to 16)")
    parser.add_argument("--slots-from", type=int, default=28)
    parser.add_argument("--slots-to", type=int, default=64)
    args = parser.parse_args()
    day = workplace_day(args.sessions, args.slots, seed=args.seed, site_share=args.share)
    layouts = [int(e) for e in args.exact.split(",")]
    planners = [RollingPlanner(Options(), Horizon(exact_slots=e)) for e in layouts]
    times: list[list[float]] = [[] for _ in layouts]
    bare: list[float] = []
    delivered = {s.id: s.delivered_wh for s in day.sessions}
    for t in range(args.slots_to):
        sub = roll(day, t, delivered, now=day.slot_start(t))
        if not sub.sessions:
            continue
        plans = []
        turn = list(range(len(layouts)))
        turn = turn[t % len(turn) :] + turn[: t % len(turn)]
        for k in turn:
            started = time.perf_counter()
            plans.append((k, planners[k].plan(sub)))
            if t >= args.slots_from:
                times[k].append((time.perf_counter() - started) * 1000)
        if t >= args.slots_from:
            h = lp.make_highs(m := build(compile_problem(sub)), method=lp.choose_method(m, lp.LpMethod.AUTO))
            started = time.perf_counter()
            h.run()
            bare.append((time.perf_counter() - started) * 1000)
        first = dict(plans)[0]
        for i, sid in enumerate(first.session_ids):
            delivered[sid] += float(first.power_w[i, 0]) * sub.slot_s / 3600
    b95 = float(np.percentile(bare, 95))
    print("| planner | re-plan mean / p95 / max ms | p95 / bare HiGHS p95 |")
    print("|---|---|---|")
    for e, ms in zip(layouts, times, strict=True):
        a = np.asarray(ms)
        p95 = float(np.percentile(a, 95))
        print(f"| {e} exact slots | {a.mean():.0f} / {p95:.0f} / {a.max():.0f} | {p95 / b95:.2f} |")
    a = np.asarray(bare)
    print(f"| bare HiGHS, full uniform LP | {a.mean():.0f} / {b95:.0f} / {a.max():.0f} | 1.00 |")


if __name__ == "__main__":
    main()
