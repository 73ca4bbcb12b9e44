"""Replayed days: the structured LP (non-uniform horizon, slack rows dropped) vs the full model.

    PYTHONPATH=. python benchmarks/horizon_report.py --sessions 1000 --slots 96 --seed 1 [--share 0.25]

Runs the day online twice (``mpc.replay``: re-plan every slot with the sessions arrived so
far, execute the first slot): once with the default options, once with ``horizon=None``
(the full uniform LP). At every re-plan of the first run it also times bare HiGHS on the
full uniform LP of the same snapshot (cold, every row: the floor), so the ratio is
measured side by side. Prints one markdown row: re-plan mean / p95 / max ms of each,
the p95 ratio, energy and sessions fully met of each and their relative difference.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.matrices import build
from ems.optimizer.mpc import replay, roll
from ems.optimizer.plan import Options
from ems.optimizer.problem import compile_problem
from ems.optimizer.snapshot import Snapshot


def bare_floor_ms(day: Snapshot, every: int) -> list[float]:
    """Bare HiGHS on the full uniform LP of each re-plan snapshot (sessions arrived so far, no
    delivered energy: the same LP size and shape as the replay's)."""
    out = []
    for t in range(0, day.slots, every):
        sub = roll(day, t, now=day.slot_start(t))
        if not sub.sessions:
            continue
        m = build(compile_problem(sub))
        h = lp.make_highs(m, method=lp.choose_method(m, lp.LpMethod.AUTO))
        started = time.perf_counter()
        h.run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def stats(ms: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ms)
    return float(a.mean()), float(np.percentile(a, 95)), float(a.max())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--share", type=float, default=0.25)
    parser.add_argument("--floor-every", type=int, default=1, help="time the bare floor every N slots")
    args = parser.parse_args()
    day = workplace_day(args.sessions, args.slots, seed=args.seed, site_share=args.share)
    fast = replay(day, Options())
    full = replay(day, Options(), horizon=None)
    floor = bare_floor_ms(day, args.floor_every)
    f_ms = [s * 1000 for s, k in zip(fast.plan_s, fast.sessions_planned, strict=True) if k]
    u_ms = [s * 1000 for s, k in zip(full.plan_s, full.sessions_planned, strict=True) if k]
    fm, fp, fx = stats(f_ms)
    um, up, ux = stats(u_ms)
    bm, bp, bx = stats(floor)
    fe, ue = fast.schedule.total_energy_wh, full.schedule.total_energy_wh
    ff, uf = fast.schedule.objective["fully_served"], full.schedule.objective["fully_served"]
    print(
        "| day | structured mean / p95 / max ms | full LP mean / p95 / max ms | bare HiGHS full LP mean / p95 / max ms "
        "| p95 structured / bare | energy kWh structured / full (diff) | fully met structured / full (diff) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.sessions} x {args.slots} seed {args.seed} share {args.share} "
        f"| {fm:.0f} / {fp:.0f} / {fx:.0f} | {um:.0f} / {up:.0f} / {ux:.0f} | {bm:.0f} / {bp:.0f} / {bx:.0f} "
        f"| {fp / bp:.2f} | {fe / 1000:.1f} / {ue / 1000:.1f} ({(fe - ue) / ue * 100:+.3f} %) "
        f"| {ff} / {uf} ({(float(ff) - float(uf)) / max(float(uf), 1.0) * 100:+.2f} %) |",
        flush=True,
    )
    print(f"day as executed: structured {fast.schedule.status}, full {full.schedule.status}")
    print(f"re-plan statuses: structured {sorted(set(fast.statuses))}, full {sorted(set(full.statuses))}")


if __name__ == "__main__":
    main()
