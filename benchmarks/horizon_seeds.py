"""Sessions fully met over many replayed days: the structured planner vs the full model, and
the full model against itself with one objective weight nudged (the noise floor).

    PYTHONPATH=. python benchmarks/horizon_seeds.py --seeds 1-8 [--sessions 1000] [--slots 96] [--share 0.15]

Each day is replayed online (``mpc.replay``) three times: with the default non-uniform
horizon (what the controller runs), with the full uniform LP, and with the full uniform LP
whose ``early`` weight is 1 % larger (``--nudge``). The last changes no constraint and no
energy, only which of the many equally good plans HiGHS returns; how far it moves the count
of fully met sessions is the noise any change to the LP brings, whatever its accuracy.
Prints one markdown row per day and a summary (mean and worst relative difference).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from benchmarks.workplace import workplace_day
from ems.optimizer.mpc import replay
from ems.optimizer.plan import Options


def seeds(text: str) -> list[int]:
    """``1-8`` or ``1,3,5`` (or both, comma separated)."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def rel(a: int, b: int) -> float:
    return (a - b) / max(b, 1) * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--seeds", default="1-8")
    parser.add_argument("--share", type=float, default=0.15)
    parser.add_argument("--nudge", type=float, default=0.01, help="relative change of Weights.early (0: skip)")
    args = parser.parse_args()
    base = Options()
    nudged = replace(base, weights=replace(base.weights, early=base.weights.early * (1 + args.nudge)))
    print(
        "| day | fully met structured / full (diff) | full, early weight nudged / full (diff) "
        "| energy structured vs full | structured re-plan p95 ms |"
    )
    print("|---|---|---|---|---|")
    diffs: list[float] = []
    noise: list[float] = []
    for seed in seeds(args.seeds):
        day = workplace_day(args.sessions, args.slots, seed=seed, site_share=args.share)
        fast = replay(day, base)
        full = replay(day, base, horizon=None)
        ff, uf = int(fast.schedule.objective["fully_served"]), int(full.schedule.objective["fully_served"])
        diffs.append(rel(ff, uf))
        cell = "-"
        if args.nudge:
            nf = int(replay(day, nudged, horizon=None).schedule.objective["fully_served"])
            noise.append(rel(nf, uf))
            cell = f"{nf} / {uf} ({noise[-1]:+.2f} %)"
        fe, ue = fast.schedule.total_energy_wh, full.schedule.total_energy_wh
        ms = [s * 1000 for s, k in zip(fast.plan_s, fast.sessions_planned, strict=True) if k]
        statuses = set(fast.statuses) | set(full.statuses)
        print(
            f"| {args.sessions} x {args.slots} seed {seed} share {args.share} | {ff} / {uf} ({diffs[-1]:+.2f} %) "
            f"| {cell} | {(fe - ue) / ue * 100:+.3f} % | {np.percentile(ms, 95):.0f} |"
            + ("" if statuses == {"OPTIMAL"} else f" statuses {sorted(statuses)}"),
            flush=True,
        )
    summary("structured vs full", diffs)
    if noise:
        summary("full nudged vs full", noise)


def summary(name: str, diffs: list[float]) -> None:
    d = np.asarray(diffs)
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    print(
        f"{name}: mean {d.mean():+.2f} % (standard error {se:.2f}), worst {d.min():+.2f} %, "
        f"within 0.2 %: {(d >= -0.2).sum()}/{d.size}"
    )


if __name__ == "__main__":
    main()
