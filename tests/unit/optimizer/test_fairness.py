"""Fairness: a symmetric site gets symmetric plans, and spreading costs no energy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.domain.units import ALL_PHASES
from ems.optimizer.fairness import identical_groups
from ems.optimizer.matrices import Weights
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import SolveStatus
from ems.optimizer.snapshot import CircuitLimits, EvseLimits, SessionDemand, SiteLimits, Snapshot
from tests.examples import examples
from tests.unit.optimizer.invariants import assert_invariants

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
SLOT_S = 900


@st.composite
def symmetric_sites(draw: st.DrawFn) -> Snapshot:
    """``k`` identical EVSEs on one feeder, each with an identical session.

    Every limit leaves each EVSE at least its minimum current when shared equally, so the
    minimum-current rule never forces one of them to pause while another charges.
    """
    slots = draw(st.integers(2, 12))
    k = draw(st.integers(2, 6))
    phases = draw(st.sampled_from([1, 3]))
    max_a = draw(st.sampled_from([16.0, 32.0]))
    min_a = draw(st.sampled_from([0.0, 6.0]))
    one_w = 230.0 * phases
    cap = tuple(draw(st.lists(st.floats(k * min_a * one_w, k * max_a * one_w * 1.2), min_size=slots, max_size=slots)))
    phase_a = draw(st.none() | st.floats(k * min_a, k * max_a * 1.2))
    feeder = CircuitLimits("feeder", None, cap, {} if phase_a is None else dict.fromkeys(ALL_PHASES, phase_a))
    evses = tuple(EvseLimits(f"e{i}", "feeder", phases, ALL_PHASES[:phases], 230.0, min_a, max_a) for i in range(k))
    a = draw(st.integers(0, slots - 1))
    d = draw(st.integers(a + 1, slots + 2))
    energy = draw(st.floats(500, 60000))
    sessions = tuple(
        SessionDemand(
            f"s{i}", f"e{i}", START + timedelta(seconds=a * SLOT_S), START + timedelta(seconds=d * SLOT_S), energy
        )
        for i in range(k)
    )
    site_cap = draw(st.none() | st.floats(k * min_a * one_w, k * max_a * one_w * 1.2).map(lambda w: (w,) * slots))
    return Snapshot(START, SLOT_S, slots, SiteLimits(site_cap), (feeder,), evses, sessions).validate()


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symmetric_sites())
def test_a_symmetric_site_gets_symmetric_plans(snap: Snapshot) -> None:
    sch = optimize(snap)
    assert sch.status is SolveStatus.OPTIMAL
    assert_invariants(snap, sch)
    tol = 1e-6 * max(1.0, float(np.abs(sch.power_w).max()))
    assert np.allclose(sch.power_w, sch.power_w[0][None, :], rtol=0, atol=tol), sch.power_w


def test_identical_groups_tell_sessions_apart_by_everything_the_lp_sees() -> None:
    evses = tuple(EvseLimits(f"e{i}", None, 1, (ALL_PHASES[0],), 230.0, 6.0, 32.0) for i in range(3))
    other_phase = EvseLimits("e3", None, 1, (ALL_PHASES[1],), 230.0, 6.0, 32.0)
    end = START + timedelta(hours=4)
    sessions = (
        SessionDemand("a", "e0", START, end, 10000.0),
        SessionDemand("b", "e1", START, end, 10000.0),
        SessionDemand("c", "e2", START, end, 12000.0),  # needs more
        SessionDemand("d", "e3", START, end, 10000.0),  # other phase
    )
    snap = Snapshot(START, SLOT_S, 16, SiteLimits((20000.0,) * 16), (), (*evses, other_phase), sessions)
    groups = identical_groups(compile_problem(snap.validate()))
    assert [sorted(g.tolist()) for g in groups] == [[0, 1]]


def test_making_equals_symmetric_costs_no_energy_on_a_tight_site() -> None:
    """Pairs of identical sessions on a tight site (minimum currents bind): at least the
    energy of the plan as solved, every limit kept. Not every pair can be made equal here:
    where the pair's average falls below the minimum, one must pause for the other."""
    evses = tuple(EvseLimits(f"e{i}", None, 3, ALL_PHASES, 230.0, 6.0, 16.0) for i in range(8))
    end = START + timedelta(hours=3)
    sessions = tuple(
        SessionDemand(f"s{i}", f"e{i}", START + timedelta(minutes=15 * (i // 2)), end, 9000.0 + 4000.0 * (i // 2))
        for i in range(8)
    )
    snap = Snapshot(START, SLOT_S, 12, SiteLimits((40000.0,) * 12), (), evses, sessions).validate()
    sch = optimize(snap)
    as_solved = optimize(snap, Options(symmetric=False))
    assert sch.status is SolveStatus.OPTIMAL
    assert_invariants(snap, sch)
    assert sch.total_energy_wh >= as_solved.total_energy_wh * (1 - 1e-3)


def test_the_spreading_term_shares_a_full_limit_between_equals() -> None:
    """Two sessions on one 11 kW feeder, both able to take it all: with the spreading term
    and without symmetrizing, the LP itself shares every executed slot."""
    evses = tuple(EvseLimits(f"e{i}", "f", 3, ALL_PHASES, 230.0, 0.0, 16.0) for i in range(2))
    feeder = CircuitLimits("f", None, (11040.0,) * 8)
    end = START + timedelta(hours=2)
    sessions = (SessionDemand("a", "e0", START, end, 50000.0), SessionDemand("b", "e1", START, end, 50000.0))
    snap = Snapshot(START, SLOT_S, 8, SiteLimits(), (feeder,), evses, sessions).validate()
    p = compile_problem(snap)
    from ems.optimizer import lp
    from ems.optimizer.matrices import build

    m = build(p, Weights(spread=1e-5))
    sol = lp.solve(m)
    assert sol.status is SolveStatus.OPTIMAL and sol.values is not None
    x = np.zeros((2, 8))
    x[m.var_sess, m.var_slot] = sol.values[: m.n_x]
    assert np.allclose(x[0], x[1], atol=1e-6)
    assert np.allclose(x.sum(axis=0), 11.04, atol=1e-6)
