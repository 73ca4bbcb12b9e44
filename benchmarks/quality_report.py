"""Quality on workplace days: online LP (MPC) vs EDF, LLF and the offline optimum.

    PYTHONPATH=. python benchmarks/quality_report.py [--sessions 500] [--slots 96] [--seeds 1,2,3] [--share 0.15]

EDF and LLF plan slot by slot from what is present, so running them over the day is their
online behaviour. The LP re-plans every slot with only the sessions that have arrived
(mpc.replay). The offline optimum is the LP with perfect foresight and no minimum current.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.workplace import workplace_day
from ems.optimizer.mpc import replay
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm


def _cell(energy_wh: float, best_wh: float, full: int) -> str:
    return f"{energy_wh / 1000:.1f} ({(1 - energy_wh / best_wh) * 100:.3f} %) / {full}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--share", type=float, default=0.15)
    args = parser.parse_args()
    print(
        "| day | optimum kWh | EDF kWh (gap) / full | LLF kWh (gap) / full | online LP kWh (gap) / full "
        "| re-plan mean / p95 / max ms | violations |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        day = workplace_day(args.sessions, args.slots, seed=seed, site_share=args.share)
        best = optimize(day, Options(min_current=False)).total_energy_wh
        cells = []
        for alg in (Algorithm.EDF, Algorithm.LLF):
            s = optimize(day, Options(algorithm=alg))
            cells.append(
                f"{s.total_energy_wh / 1000:.1f} ({(1 - s.total_energy_wh / best) * 100:.3f} %) / {s.fully_served()}"
            )
        r = replay(day)
        s = r.schedule
        hard = [v.kind for v in s.violations if v.kind != "min_current_unserved"]
        times = np.array(r.plan_s) * 1000
        cells.append(
            f"{s.total_energy_wh / 1000:.1f} ({(1 - s.total_energy_wh / best) * 100:.3f} %) / {s.fully_served()}"
        )
        print(
            f"| {args.sessions} x {args.slots} seed {seed} | {best / 1000:.1f} | {' | '.join(cells)} | "
            f"{times.mean():.0f} / {np.percentile(times, 95):.0f} / {times.max():.0f} "
            f"(max {max(r.sessions_planned)} sessions)"
            f" | {len(hard)} hard |",
            flush=True,
        )


if __name__ == "__main__":
    main()
