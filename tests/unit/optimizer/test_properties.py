"""Hypothesis-generated sites and sessions: every algorithm keeps the invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.domain.units import ALL_PHASES
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm, SolveStatus
from ems.optimizer.snapshot import CircuitLimits, EvseLimits, SessionDemand, SiteLimits, Snapshot
from tests.examples import examples
from tests.unit.optimizer.invariants import assert_invariants

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
SLOT_S = 900


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    slots = draw(st.integers(2, 10))
    n_circuits = draw(st.integers(0, 3))
    circuits = []
    for k in range(n_circuits):
        parent = draw(st.sampled_from([None, *[f"c{j}" for j in range(k)]]))
        cap = draw(st.none() | st.lists(st.floats(0, 30000), min_size=slots, max_size=slots).map(tuple))
        limits = draw(st.dictionaries(st.sampled_from(ALL_PHASES), st.floats(0, 64), max_size=3))
        circuits.append(CircuitLimits(f"c{k}", parent, cap, limits))
    n_evses = draw(st.integers(1, 6))
    evses = []
    for k in range(n_evses):
        phases = draw(st.sampled_from([1, 3]))
        first = draw(st.integers(0, 2))
        rotation = (ALL_PHASES[first:] + ALL_PHASES[:first])[:phases]
        max_a = draw(st.sampled_from([10.0, 16.0, 32.0]))
        circuit = draw(st.sampled_from([None, *[c.id for c in circuits]]))
        evses.append(EvseLimits(f"e{k}", circuit, phases, rotation, 230.0, draw(st.sampled_from([0.0, 6.0])), max_a))
    sessions = []
    for k, e in enumerate(evses):
        if not draw(st.booleans()):
            continue
        a = draw(st.integers(-2, slots))
        d = draw(st.integers(a + 1, slots + 3))
        sessions.append(
            SessionDemand(
                id=f"s{k}",
                evse=e.id,
                arrival=START + timedelta(seconds=a * SLOT_S + draw(st.sampled_from([0, 300]))),
                departure=START + timedelta(seconds=d * SLOT_S),
                energy_wh=draw(st.floats(0, 40000)),
                delivered_wh=draw(st.sampled_from([0.0, 1000.0])),
                max_w=draw(st.none() | st.floats(1000, 22000)),
                phases=1 if e.phases == 3 and draw(st.booleans()) else None,
                priority=draw(st.integers(0, 1)),
            )
        )
    site_cap = draw(st.none() | st.lists(st.floats(0, 40000), min_size=slots, max_size=slots).map(tuple))
    site_limits = draw(st.dictionaries(st.sampled_from(ALL_PHASES), st.floats(0, 100), max_size=3))
    prices = draw(st.none() | st.lists(st.floats(-0.1, 1.0), min_size=slots, max_size=slots).map(tuple))
    base = draw(st.none() | st.lists(st.floats(0, 20000), min_size=slots, max_size=slots).map(tuple))
    snap = Snapshot(
        START,
        SLOT_S,
        slots,
        SiteLimits(site_cap, site_limits, base),
        tuple(circuits),
        tuple(evses),
        tuple(sessions),
        prices,
    )
    assert snap.problems() == []
    return snap


PROPERTY = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(snapshots())
def test_lp_keeps_every_invariant(snap: Snapshot) -> None:
    sch = optimize(snap)
    assert sch.status is SolveStatus.OPTIMAL
    assert_invariants(snap, sch)


@PROPERTY
@given(snapshots(), st.sampled_from([Algorithm.EDF, Algorithm.LLF, Algorithm.ROUND_ROBIN]))
def test_heuristics_keep_every_invariant_and_lp_is_not_worse(snap: Snapshot, algorithm: Algorithm) -> None:
    base = optimize(snap, Options(algorithm=algorithm))
    assert_invariants(snap, base)
    relaxed = optimize(snap, Options(min_current=False))
    # The LP without the minimum-current rule is a relaxation of every heuristic's problem,
    # so up to its objective's secondary weights (0.06 %, matrices.Weights) it delivers more.
    assert relaxed.total_energy_wh >= base.total_energy_wh * (1 - 6e-4) - 1e-3
    # With the minimum-current repair it may lose a little more; the target is 0.1 %.
    assert optimize(snap).total_energy_wh >= base.total_energy_wh * (1 - 1e-3) - 1e-3


@PROPERTY
@given(snapshots())
def test_uncontrolled_reports_what_it_breaks(snap: Snapshot) -> None:
    sch = optimize(snap, Options(algorithm=Algorithm.UNCONTROLLED))
    assert_invariants(snap, sch, respects_limits=False)
    if sch.status is not SolveStatus.INFEASIBLE:
        assert_invariants(snap, sch)


def test_a_limit_of_a_femtoampere_is_zero_and_the_lp_stays_optimal() -> None:
    """Found by the property above in CI: L2 at 3e-14 A left HiGHS 0.23 % short of EDF on L1."""
    evses = (
        EvseLimits("e2", None, 3, ALL_PHASES, 230.0, 0.0, 10.0),
        EvseLimits("e3", None, 1, ALL_PHASES[:1], 230.0, 0.0, 10.0),
    )
    end = START + timedelta(seconds=SLOT_S)
    sessions = (SessionDemand("s2", "e2", START, end, 1726.0), SessionDemand("s3", "e3", START, end, 576.0))
    limits = {ALL_PHASES[0]: 2.0, ALL_PHASES[1]: 3.190191683896564e-14}
    snap = Snapshot(START, SLOT_S, 2, SiteLimits(None, limits), (), evses, sessions)
    lp = optimize(snap, Options(min_current=False))
    assert lp.status is SolveStatus.OPTIMAL
    assert_invariants(snap, lp)
    # 2 A on L1 for one 15-minute slot at 230 V; the three-phase EVSE gets nothing through L2.
    assert abs(lp.total_energy_wh - 115.0) < 1e-6
    assert abs(optimize(snap, Options(algorithm=Algorithm.EDF)).total_energy_wh - 115.0) < 1e-6
