"""One-run optimizer report: build, end-to-end, and bare HiGHS (the floor) as ratios.

    PYTHONPATH=. python benchmarks/optimizer_report.py [--sizes 10,100,1000,3000] [--slots 96,288] [--repeat 3]

Prints a markdown table (median of ``--repeat`` runs, same process, same matrices).
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.matrices import build
from ems.optimizer.plan import optimize
from ems.optimizer.problem import compile_problem


def bare_highs_s(sessions: int, slots: int) -> tuple[float, int, str]:
    m = build(compile_problem(workplace_day(sessions, slots)))
    method = lp.choose_method(m, lp.LpMethod.AUTO)
    h = lp.make_highs(m, method=method)
    started = time.perf_counter()
    h.run()
    return time.perf_counter() - started, m.shape[1], method


def build_s(sessions: int, slots: int) -> float:
    snap = workplace_day(sessions, slots)
    started = time.perf_counter()
    build(compile_problem(snap.validate()))
    return time.perf_counter() - started


def end_to_end_s(sessions: int, slots: int) -> tuple[float, float, str]:
    snap = workplace_day(sessions, slots)
    started = time.perf_counter()
    sch = optimize(snap)
    return time.perf_counter() - started, sch.solve_s, str(sch.status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000,3000")
    parser.add_argument("--slots", default="96,288")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        "| sessions x slots | variables | method | build ms | bare HiGHS ms | end-to-end ms "
        "| e2e / bare | build share | status |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for slots in [int(s) for s in args.slots.split(",")]:
        for n in [int(s) for s in args.sizes.split(",")]:
            bare, cols, method = [], 0, ""
            b, e2e = [], []
            status = ""
            for _ in range(args.repeat):
                s, cols, method = bare_highs_s(n, slots)
                bare.append(s)
                b.append(build_s(n, slots))
                total, _, status = end_to_end_s(n, slots)
                e2e.append(total)
            fb, bb, eb = statistics.median(bare), statistics.median(b), statistics.median(e2e)
            print(
                f"| {n} x {slots} | {cols} | {method} | {bb * 1000:.1f} | {fb * 1000:.1f} | {eb * 1000:.1f} | "
                f"{eb / fb:.2f} | {bb / eb * 100:.1f} % | {status} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
