"""Honest statuses under time limits, the feasibility checker, and rolling re-plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from benchmarks.workplace import workplace_day
from ems.domain.units import Phase
from ems.optimizer import lp
from ems.optimizer.feasibility import check, is_feasible
from ems.optimizer.matrices import build
from ems.optimizer.mpc import RollingPlanner, replay, roll
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import Algorithm, SolveStatus
from ems.optimizer.snapshot import EvseLimits, SessionDemand, SiteLimits, Snapshot
from tests.unit.optimizer.invariants import assert_invariants


def test_time_limit_gives_feasible_or_fallback_never_a_false_optimal() -> None:
    snap = workplace_day(150, 96, seed=3, site_share=0.15)
    sch = optimize(snap, Options(time_limit_s=1e-4))
    assert sch.status in (SolveStatus.FEASIBLE, SolveStatus.FALLBACK)
    assert sch.stats["model_status"] != "Optimal"
    assert_invariants(snap, sch)


def test_bare_lp_time_limit_status() -> None:
    m = build(compile_problem(workplace_day(150, 96, seed=3, site_share=0.15)))
    sol = lp.solve(m, time_limit_s=1e-4)
    assert sol.status in (SolveStatus.FEASIBLE, SolveStatus.FALLBACK)
    assert lp.solve(m).status is SolveStatus.OPTIMAL


def test_feasibility_names_each_violation() -> None:
    snap = workplace_day(20, 24, seed=1, site_share=0.1)
    p = compile_problem(snap)
    ok = optimize(snap)
    assert is_feasible(snap, ok.power_w)
    bad = ok.power_w.copy()
    bad[:, :] = 0.0
    i = int(np.argmax(p.end > p.first))
    bad[i, p.first[i]] = p.max_kw[i] * 1000 + 50  # above its own max
    bad[i, 0 if p.first[i] > 0 else p.slots - 1] = 1000.0  # outside its window (or past it)
    kinds = {v.kind for v in check(snap, bad)}
    assert "above_max" in kinds
    over = ok.power_w.copy()
    over[:, :] = np.where(p.active(), p.max_kw[:, None] * 1000, 0.0)
    kinds = {v.kind for v in check(snap, over)}
    assert "node_power" in kinds or "node_phase" in kinds
    assert not is_feasible(snap, over)


def test_roll_moves_the_horizon_and_forgets_departed_sessions() -> None:
    snap = workplace_day(30, 96, seed=2)
    later = roll(snap, 48, {"s0": 1234.0}, now=snap.slot_start(48))
    assert later.slots == 48 and later.start == snap.slot_start(48)
    assert all(s.departure > later.start and s.arrival <= later.start for s in later.sessions)
    assert later.site.capacity_w == snap.site.capacity_w[48:]  # type: ignore[index]
    s0 = [s for s in later.sessions if s.id == "s0"]
    assert not s0 or s0[0].delivered_wh == 1234.0


def test_warm_replan_matches_a_cold_solve() -> None:
    day = workplace_day(60, 96, seed=4, site_share=0.15)
    planner = RollingPlanner()
    first = roll(day, 40, now=day.slot_start(40))
    planner.plan(first)
    second = roll(day, 41, now=day.slot_start(41))
    warm = planner.plan(second)
    cold = optimize(second)
    assert warm.objective["lp"] == pytest.approx(cold.objective["lp"], rel=1e-6)
    assert_invariants(second, warm)


def test_replay_runs_a_small_day_online_within_limits() -> None:
    day = workplace_day(40, 48, seed=5, site_share=0.2)
    result = replay(day)
    assert len(result.plan_s) == 48
    assert_invariants(day, result.schedule)


def test_smoothness_weight_reduces_power_changes_within_the_energy_bound() -> None:
    from ems.optimizer.matrices import Weights

    snap = workplace_day(40, 48, seed=6, site_share=0.15)
    smoothing = Options(weights=Weights(smoothness=5e-5))
    plain = optimize(snap, Options(min_current=False))
    smooth = optimize(snap, Options(min_current=False, weights=smoothing.weights))
    assert smooth.objective["power_changes_w"] < plain.objective["power_changes_w"]
    # Bound from matrices.Weights: 2 x smoothness of the energy (plus the other weights).
    assert smooth.total_energy_wh >= plain.total_energy_wh * (1 - 1e-3)
    assert_invariants(snap, optimize(snap, smoothing))


def test_a_tenth_of_a_milliamp_over_a_zero_phase_limit_is_a_violation() -> None:
    """Found by test_uncontrolled_reports_what_it_breaks: the current rules took the 1 mW tolerance
    as 1 mA, so 0.54 mA on a phase limited to (nearly) 0 A passed as feasible."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    snap = Snapshot(
        start=start,
        slot_s=900,
        slots=4,
        site=SiteLimits(capacity_w=None, phase_limits_a={Phase.L1: 1e-200, Phase.L2: 100.0, Phase.L3: 100.0}),
        evses=(EvseLimits("e0", phases=1, phase_map=(Phase.L1,), voltage_v=230.0, min_a=0.0, max_a=32.0),),
        sessions=(SessionDemand("s0", "e0", start, start + timedelta(hours=1), energy_wh=0.03, delivered_wh=0.0),),
    )
    uncontrolled = optimize(snap, Options(algorithm=Algorithm.UNCONTROLLED))
    assert 1e-4 < float(uncontrolled.power_w.max()) / 230.0 < 1e-3, "0.12 W: 0.52 mA, between the two tolerances"
    assert uncontrolled.status is SolveStatus.INFEASIBLE
    assert {v.kind for v in check(snap, uncontrolled.power_w)} == {"node_phase"}
    assert optimize(snap).status is SolveStatus.OPTIMAL and float(optimize(snap).power_w.max()) == 0.0
