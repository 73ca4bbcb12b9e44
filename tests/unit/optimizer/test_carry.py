"""A basis carried from plan to plan (carry.py): same optima, fewer simplex iterations."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.workplace import workplace_day
from ems.optimizer import lp
from ems.optimizer.carry import identify
from ems.optimizer.horizon import Horizon, coarsen
from ems.optimizer.matrices import build
from ems.optimizer.mpc import RollingPlanner, roll
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import SolveStatus
from ems.optimizer.snapshot import Snapshot
from tests.unit.optimizer.test_phasor import us_site

COARSE = Horizon(exact_slots=4, min_columns=0)
"""Blocks from the fifth slot on, whatever the LP's size: the blocks move with every roll."""


def _days() -> list[tuple[str, Snapshot, int]]:
    """(name, day, a slot mid-morning, with sessions present and limits binding)."""
    return [
        ("workplace", workplace_day(60, 96, seed=4, site_share=0.15), 38),
        ("us-lines", us_site(60, 48, seed=3, secondary_a=100.0, primary_a=30.0), 12),
    ]


@pytest.mark.parametrize(("name", "day", "t"), _days())
def test_identities_are_unique_within_an_lp(name: str, day: Snapshot, t: int) -> None:
    p = coarsen(compile_problem(roll(day, t, now=day.slot_start(t))), COARSE)
    m = build(p)
    ident = identify(p, m)
    for elements, count in ((ident.cols, m.shape[1]), (ident.rows, m.shape[0])):
        keys = zip(elements.family.tolist(), elements.entity.tolist(), elements.start.tolist(), strict=True)
        assert len(set(keys)) == count, name
        assert (elements.end > elements.start).all()


@pytest.mark.parametrize(("name", "day", "t"), _days())
def test_the_same_snapshot_again_needs_no_simplex_iteration(name: str, day: Snapshot, t: int) -> None:
    snap = roll(day, t, now=day.slot_start(t))
    planner = RollingPlanner(horizon=COARSE)
    first = planner.plan(snap)
    again = planner.plan(snap)
    assert first.status is again.status is SolveStatus.OPTIMAL
    assert again.stats["iterations"] == 0, name
    assert again.objective["lp"] == pytest.approx(first.objective["lp"], rel=1e-9)


@pytest.mark.parametrize(("name", "day", "start"), _days())
def test_carried_basis_keeps_every_optimum_and_saves_iterations(name: str, day: Snapshot, start: int) -> None:
    with_basis = RollingPlanner(horizon=COARSE)
    values_only = RollingPlanner(horizon=COARSE, carry_basis=False)
    iterations = np.zeros((2, 0), dtype=np.int64)
    for t in range(start, start + 16):
        snap = roll(day, t, now=day.slot_start(t))
        a, b = with_basis.plan(snap), values_only.plan(snap)
        cold = optimize(snap, Options(horizon=COARSE))
        assert a.status is b.status is SolveStatus.OPTIMAL
        assert a.objective["lp"] == pytest.approx(b.objective["lp"], rel=1e-6)
        assert a.objective["lp"] == pytest.approx(cold.objective["lp"], rel=1e-6)
        iterations = np.append(iterations, [[a.stats["iterations"]], [b.stats["iterations"]]], axis=1)
    assert iterations[1].sum() > 0 and iterations[0].sum() < iterations[1].sum(), (name, iterations)


def test_statuses_name_every_column_and_row_of_the_lp() -> None:
    p = compile_problem(us_site(30, 24, seed=2))
    m = build(p)
    sol = lp.solve(m)
    out = lp.statuses(sol, m)
    assert out is not None
    col, row = out
    assert col.shape == (m.shape[1],) and row.shape == (m.shape[0],)
    held = np.zeros(m.shape[0], dtype=bool)
    assert sol.rows is not None
    held[sol.rows] = True
    # As many basic variables as rows the solver holds; the rows it left out are marked so.
    assert int((col == lp.BASIC).sum() + (row == lp.BASIC).sum()) == int(held.sum())
    assert ((row == lp.ABSENT) == ~held).all()
