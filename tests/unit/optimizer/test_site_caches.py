"""What the optimizer keeps from plan to plan about the site (speed, issue 12) never goes stale:
a re-plan after a limit or the wiring changed plans the new site, exactly as a fresh planner would."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from ems.optimizer.feasibility import check
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.phasor import directions, polygon, sides
from ems.optimizer.problem import compile_problem
from ems.optimizer.snapshot import CurrentLimit, Snapshot
from tests.unit.optimizer.test_phasor import us_site


def _polygon_uncached(coef: sp.csr_array, limit_a: np.ndarray, loss: float) -> np.ndarray:
    """The polygon's rows as a dense matrix with the limit appended, from :func:`directions` alone."""
    out = []
    dense = coef.toarray()
    for c in range(dense.shape[0]):
        nz = np.flatnonzero(dense[c])
        phi, spacing = directions(dense[c, nz], loss)
        for angle in phi:
            row = np.zeros(dense.shape[1])
            row[nz] = (dense[c, nz] * np.exp(-1j * angle)).real
            if (row > 1e-12).any():
                out.append(np.append(row, limit_a[c] * math.cos(spacing / 2.0)))
    return np.array(out)


def test_memoised_sides_give_the_polygon_computed_afresh() -> None:
    p = compile_problem(us_site(12, 8))
    want = _polygon_uncached(p.phasor_coef, p.phasor_limit_a, 0.005)
    for _ in range(2):  # the first call fills the memo, the second reads it
        R, hi, owner = polygon(p.phasor_coef, p.phasor_limit_a, 0.005)
        np.testing.assert_array_equal(np.column_stack((R.toarray(), hi)), want)
        assert owner.tolist() == sorted(owner.tolist())
    # Another limit with the same coefficients: the same sides, its own right-hand side.
    R2, hi2, _ = polygon(p.phasor_coef, p.phasor_limit_a * 0.5, 0.005)
    np.testing.assert_array_equal(R2.toarray(), R.toarray())
    np.testing.assert_array_equal(hi2, hi * 0.5)
    assert sides.cache_info().hits > 0


def _plan_twice(first: Snapshot, second: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """``second`` re-planned after ``first`` by one planner, and by a fresh one."""
    planner = RollingPlanner()
    planner.plan(first)
    again = planner.plan(second)
    fresh = RollingPlanner().plan(second)
    assert not [v for v in check(compile_problem(second), again.power_w) if v.kind != "below_min"]
    return again.power_w, fresh.power_w


def test_a_line_limit_lowered_between_plans_is_planned() -> None:
    snap = us_site(12, 8, secondary_a=60.0, primary_a=18.0)
    tighter = replace(snap, current_limits=tuple(replace(c, limit_a=c.limit_a * 0.5) for c in snap.current_limits))
    again, fresh = _plan_twice(snap, tighter)
    before = RollingPlanner().plan(snap).power_w
    assert again[:, 0].sum() < 0.75 * before[:, 0].sum()  # the halved lines bind
    np.testing.assert_allclose(again.sum(axis=0), fresh.sum(axis=0), rtol=1e-6, atol=1e-3)


def test_rewired_evses_between_plans_are_planned() -> None:
    """The same limit ids and values, other coefficients (one line pair's EVSEs moved to
    another angle): the line currents of the second plan follow the new wiring."""
    snap = us_site(12, 8)
    moved = tuple(
        replace(c, terms=tuple((e, coef, angle if angle != 30.0 else -90.0) for e, coef, angle in c.terms))
        for c in snap.current_limits
    )
    rewired = replace(snap, current_limits=moved)
    again, fresh = _plan_twice(snap, rewired)
    np.testing.assert_allclose(again.sum(axis=0), fresh.sum(axis=0), rtol=1e-6, atol=1e-3)
    coef_before, coef_after = (compile_problem(s).phasor_coef.toarray() for s in (snap, rewired))
    assert not np.array_equal(coef_before, coef_after)


def test_a_limit_added_between_plans_is_planned() -> None:
    snap = us_site(9, 8, primary_a=None)
    evses = [e.id for e in snap.evses]
    cap = CurrentLimit("cap", 20.0, tuple((e, 1.0, 30.0) for e in evses))
    capped = replace(snap, current_limits=(*snap.current_limits, cap))
    again, _ = _plan_twice(snap, capped)
    p = compile_problem(capped)
    line_a = np.abs(p.phasor_coef @ (again / 1000.0).astype(np.complex128))
    assert (line_a[-1] <= 20.0 + 1e-6).all()
    assert (np.abs(p.phasor_coef[[-1]] @ (RollingPlanner().plan(snap).power_w / 1000.0)) > 20.0 + 1e-6).any()
