"""Learning what each car takes: bounds lowered for EVs drawing less, raised when they draw at it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from ems.domain.units import ALL_PHASES
from ems.optimizer.draw import DRAW_HEADROOM_A, learned
from ems.optimizer.plan import optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import SolveStatus
from ems.optimizer.snapshot import EvseLimits, SessionDemand, SiteLimits, Snapshot
from tests.unit.optimizer.invariants import assert_invariants

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
EVSE = EvseLimits("e0", None, 3, ALL_PHASES, 230.0, 6.0, 32.0)
EVSE_W = 32.0 * 230.0 * 3


def _session(sid: str, evse: str, **kw: object) -> SessionDemand:
    return SessionDemand(sid, evse, START, START + timedelta(hours=4), 200_000.0, **kw)  # type: ignore[arg-type]


def test_without_a_reading_a_session_is_planned_at_its_evse_maximum() -> None:
    s = _session("a", "e0")
    assert learned(s, EVSE).max_a is None
    p = compile_problem(Snapshot(START, 900, 4, evses=(EVSE,), sessions=(s,)).validate())
    assert p.max_kw[0] * 1000 == EVSE_W
    # an allotted limit without a reading (nothing measured yet) teaches nothing either
    assert learned(replace(s, allotted_a=16.0), EVSE).max_a is None


def test_a_car_drawing_less_than_allotted_is_bounded_near_what_it_takes() -> None:
    s = _session("a", "e0", observed_a=16.0, observed_phases=3, allotted_a=32.0)
    took = learned(s, EVSE)
    assert took.max_a == 16.0 + DRAW_HEADROOM_A
    assert took.phases is None
    p = compile_problem(Snapshot(START, 900, 4, evses=(EVSE,), sessions=(s,)).validate())
    assert np.isclose(p.max_kw[0], (16.0 + DRAW_HEADROOM_A) * 230.0 * 3 / 1000)


def test_a_car_drawing_at_its_bound_is_raised_to_the_evse_maximum_again() -> None:
    s = _session("a", "e0", observed_a=17.6, observed_phases=3, allotted_a=18.0)
    assert learned(s, EVSE).max_a is None


def test_a_one_phase_car_on_a_three_phase_evse_is_planned_on_one_phase() -> None:
    s = _session("a", "e0", observed_a=16.0, observed_phases=1, allotted_a=32.0)
    p = compile_problem(Snapshot(START, 900, 4, evses=(EVSE,), sessions=(s,)).validate())
    assert np.count_nonzero(p.amps_per_kw[0]) == 1
    assert np.isclose(p.max_kw[0], (16.0 + DRAW_HEADROOM_A) * 230.0 / 1000)


def test_a_car_drawing_nothing_teaches_nothing() -> None:
    s = _session("a", "e0", observed_a=0.0, observed_phases=0, allotted_a=32.0)
    assert learned(s, EVSE).max_a is None


def test_a_learned_bound_never_drops_below_the_evse_minimum() -> None:
    s = _session("a", "e0", observed_a=2.0, observed_phases=3, allotted_a=32.0)
    assert learned(s, EVSE).max_a == EVSE.min_a


def test_capacity_a_slow_car_leaves_goes_to_the_car_that_waits() -> None:
    """Two 22 kW EVSEs on a 22 kW site, one car takes only 11 kW (16 A). Planned at the
    EVSE's 22 kW, whatever the plan allots the slow car above 16 A stays idle; learned, the
    slow car is never allotted more than 16 A + headroom and the other car gets the rest."""
    evses = (replace(EVSE, id="e0"), replace(EVSE, id="e1"))
    takes_w = 16.0 * 230.0 * 3
    # the slow car leaves first, so the LP serves it first
    blind = (replace(_session("slow", "e0"), departure=START + timedelta(hours=2)), _session("fast", "e1"))
    seen = (
        replace(blind[0], observed_a=16.0, observed_phases=3, allotted_a=32.0),
        replace(blind[1], observed_a=16.0, observed_phases=3, allotted_a=16.0),
    )
    flows = []
    for sessions in (blind, seen):
        snap = Snapshot(START, 900, 8, SiteLimits((EVSE_W,) * 8), (), evses, sessions).validate()
        sch = optimize(snap)
        assert sch.status is SolveStatus.OPTIMAL
        assert_invariants(snap, sch)
        flows.append(np.minimum(sch.power_w[0], takes_w) + sch.power_w[1])
    slow_bound_w = (16.0 + DRAW_HEADROOM_A) * 230.0 * 3
    assert np.all(flows[1] >= EVSE_W - (slow_bound_w - takes_w) - 1e-6)  # idle: the headroom at most
    assert flows[1].sum() > flows[0].sum() + 1000.0
