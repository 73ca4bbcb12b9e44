"""Fleet-size re-plans: the structured LP (non-uniform horizon, slack rows dropped) vs bare HiGHS.

    PYTHONPATH=. python benchmarks/fleet_report.py --sizes 1000x96,2000x288,5000x96 [--repeat 3]

Per size, in one process: a cold re-plan of a whole workplace day (``RollingPlanner().plan``,
every session known, no warm start: the worst case a grid signal causes), end to end
(validate, compile, build, solve, repair, explain, check), and bare HiGHS (``Highs.run()``)
on the full uniform LP of the same snapshot, cold with every row (the floor of the old
model). Prints a markdown row per size with both, their ratio, and the plan's status.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.matrices import build
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.problem import compile_problem


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000x96,2000x288,5000x96")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bare-repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        "| sessions x slots | structured columns x rows | re-plan ms (median) | full LP columns x rows "
        "| bare HiGHS full LP ms | re-plan / bare | status |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, slots = (int(v) for v in size.split("x"))
        day = workplace_day(n, slots)
        times, status, cols, rows = [], "", 0, 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            sch = RollingPlanner().plan(day)
            times.append(time.perf_counter() - started)
            status, cols, rows = str(sch.status), int(sch.stats["variables"]), int(sch.stats["rows"])
        m = build(compile_problem(day))
        bare = []
        for _ in range(args.bare_repeat):
            h = lp.make_highs(m, method=lp.choose_method(m, lp.LpMethod.AUTO))
            started = time.perf_counter()
            h.run()
            bare.append(time.perf_counter() - started)
        e, b = statistics.median(times), statistics.median(bare)
        print(
            f"| {n} x {slots} | {cols} x {rows} | {e * 1000:.0f} | {m.shape[1]} x {m.shape[0]} "
            f"| {b * 1000:.0f} | {e / b:.3f} | {status} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
