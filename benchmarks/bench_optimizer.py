"""Optimizer benchmarks (pytest-benchmark): build, end to end, and bare HiGHS (the floor).

    python -m pytest benchmarks/bench_optimizer.py --benchmark-only --benchmark-group-by=param:size \
        --benchmark-columns=median,min,max,rounds -p no:cacheprovider

Group by size to read the ratio end-to-end / bare HiGHS within one run (the machine is
shared, so absolute numbers drift; ratios measured side by side hold). Sizes above
1,000 sessions take seconds per round and run one round each. For a one-screen table with
the ratios computed, run ``PYTHONPATH=. python benchmarks/optimizer_report.py``. Fleet sizes
(``test_replan``: a cold ``RollingPlanner`` re-plan over the non-uniform horizon) are
reported as ratios to bare HiGHS on the full uniform LP by ``benchmarks/fleet_report.py``,
and online over replayed days by ``benchmarks/horizon_report.py``.
"""

from __future__ import annotations

import pytest

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.matrices import LpMatrices, build
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.plan import optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.snapshot import Snapshot

SIZES = [(n, t) for t in (96, 288) for n in (10, 100, 1000, 3000)]


def _rounds(sessions: int, slots: int) -> int:
    return 1 if sessions * slots > 100_000 else 5


@pytest.fixture(scope="module")
def days() -> dict[tuple[int, int], Snapshot]:
    return {size: workplace_day(*size) for size in SIZES}


@pytest.fixture(scope="module")
def matrices(days: dict[tuple[int, int], Snapshot]) -> dict[tuple[int, int], LpMatrices]:
    return {size: build(compile_problem(snap)) for size, snap in days.items()}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_build(benchmark, days, size) -> None:  # type: ignore[no-untyped-def]
    snap = days[size]
    benchmark.pedantic(lambda: build(compile_problem(snap.validate())), rounds=5, iterations=1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_end_to_end(benchmark, days, size) -> None:  # type: ignore[no-untyped-def]
    snap = days[size]
    benchmark.pedantic(lambda: optimize(snap), rounds=_rounds(*size), iterations=1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bare_highs(benchmark, matrices, size) -> None:  # type: ignore[no-untyped-def]
    m = matrices[size]
    method = lp.choose_method(m, lp.LpMethod.AUTO)

    def setup() -> tuple[tuple[object], dict[str, object]]:
        return (lp.make_highs(m, method=method),), {}

    benchmark.pedantic(lambda h: h.run(), setup=setup, rounds=_rounds(*size), iterations=1)


FLEET = [(1000, 96), (2000, 288), (5000, 96)]


@pytest.mark.parametrize("size", FLEET, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replan(benchmark, size) -> None:  # type: ignore[no-untyped-def]
    snap = workplace_day(*size)
    benchmark.pedantic(lambda: RollingPlanner().plan(snap), rounds=3, iterations=1)
