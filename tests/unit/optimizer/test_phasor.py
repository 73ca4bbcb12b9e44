"""Phasor (line-current) limits: the polygon is inner, every algorithm keeps the exact disc,
and the LP's energy is within 1 % of the exact second-order-cone optimum (cvxpy, dev extra)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.soc_exact import exact_energy
from ems.domain.units import ALL_PHASES
from ems.optimizer.feasibility import check
from ems.optimizer.matrices import build
from ems.optimizer.phasor import (
    LineState,
    directions,
    magnitudes,
    phasor_kinds,
    polygon,
    room,
    session_phasors,
    step_for,
)
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import Algorithm
from ems.optimizer.snapshot import CircuitLimits, CurrentLimit, EvseLimits, SessionDemand, SiteLimits, Snapshot
from ems.optimizer.wiring import Connection, Transformer, compile_wiring
from tests.examples import examples
from tests.unit.optimizer.invariants import assert_invariants

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
SLOT_S = 900
L1, L2, L3 = ALL_PHASES
PAIRS = ((L1, L2), (L2, L3), (L3, L1))


@given(
    st.lists(st.tuples(st.floats(0.1, 3.0), st.floats(-180, 180)), min_size=1, max_size=6),
    st.sampled_from([0.05, 0.005, 0.001]),
)
@settings(max_examples=examples(60), deadline=None)
def test_polygon_is_inner_and_loses_at_most_the_setting(terms: list[tuple[float, float]], loss: float) -> None:
    a = np.array([m * np.exp(1j * math.radians(d)) for m, d in terms])
    R, hi, _ = polygon(sp.csr_array(a[None, :]), np.array([10.0]), loss)
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, (a.size, 4000)) * rng.uniform(0, 12, 4000)
    z = a @ x
    inside = (R @ x <= hi[:, None] + 1e-12).all(axis=0)
    assert (np.abs(z[inside]) <= 10.0 + 1e-9).all(), "a point of the polygon is outside the disc"
    assert inside[np.abs(z) <= 10.0 * (1 - loss) - 1e-9].all(), "the polygon loses more than the setting"


def test_directions_cover_only_the_cone() -> None:
    line = np.array([np.exp(1j * math.radians(30)), -np.exp(1j * math.radians(150))])  # |I_ab - I_ca|
    phi, spacing = directions(line, 0.005)
    assert phi.size == math.ceil(math.radians(60) / step_for(0.005))  # 6 rows, where the circle needs 32
    assert spacing <= step_for(0.005)
    one_ray, exact = directions(np.array([2.0 + 0j, 1.0 + 0j]), 0.005)
    assert one_ray.size == 1 and exact == 0.0
    circle, _ = directions(np.array([1, 1j, -1, -1j]), 0.005)
    assert circle.size == 32


def test_room_is_exact() -> None:
    z = np.array([3.0 + 0j])
    a = np.array([1j])
    t = room(z, a, np.array([5.0]))
    assert abs(abs(z[0] + t * a[0]) - 5.0) < 1e-12  # 3-4-5


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=examples(100), deadline=None)
def test_line_state_room_equals_the_vectorised_room(seed: int) -> None:
    rng = np.random.default_rng(seed)
    limits, sessions = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    dense = rng.normal(size=(limits, sessions)) + 1j * rng.normal(size=(limits, sessions))
    dense[rng.random((limits, sessions)) < 0.4] = 0
    coef = sp.csr_array(dense)
    limit_a = rng.uniform(0.5, 8.0, limits)
    state = LineState(coef, limit_a, rng.uniform(0, 2, sessions), session_phasors(coef))
    for i in range(sessions):
        idx, a = state.per_session[i]
        want = room(state.z[idx], a, limit_a[idx]) if idx.size else math.inf
        assert state.room(i) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_snapshot_lists_current_limit_problems() -> None:
    evse = EvseLimits("e", phases=1, phase_map=(L1,))
    bad = (
        CurrentLimit("x", -1.0, (("e", 1.0, 0.0),)),
        CurrentLimit("y", math.nan, (("nope", 1.0, 0.0),)),
        CurrentLimit("z", 10.0, ()),
        CurrentLimit("z", 10.0, (("e", math.inf, 0.0),)),
    )
    problems = Snapshot(START, SLOT_S, 4, evses=(evse,), current_limits=bad).problems()
    text = "\n".join(problems)
    for expected in (
        "current limit x: limit_a",
        "current limit y: limit_a",
        "'nope' is not an evse",
        "z: needs at least one term",
        "z: defined more than once",
        "must be finite",
    ):
        assert expected in text, (expected, problems)
    ll = EvseLimits("f", phases=3, lines=(L1, L1))
    assert any("line-to-line" in p for p in Snapshot(START, SLOT_S, 4, evses=(ll,)).problems())


def us_site(
    n: int = 9, slots: int = 8, *, secondary_a: float = 60.0, primary_a: float | None = 18.0, seed: int = 1
) -> Snapshot:
    """``n`` 208 V line-to-line EVSEs over the three line pairs behind a delta-wye transformer."""
    rng = np.random.default_rng(seed)
    evses = tuple(
        EvseLimits(f"e{k}", "tx", 1, (PAIRS[k % 3][0],), 208.0, 6.0, 32.0, lines=PAIRS[k % 3]) for k in range(n)
    )
    tx = CircuitLimits("tx", None, None, {q: secondary_a for q in ALL_PHASES})
    prim = {} if primary_a is None else {q: primary_a for q in ALL_PHASES}
    wired = compile_wiring(SiteLimits(), (tx,), evses, (Transformer("tx", Connection.DELTA_WYE, 4.0, prim),))
    sessions = tuple(
        SessionDemand(
            f"s{k}",
            f"e{k}",
            START + timedelta(seconds=SLOT_S * int(rng.integers(0, slots // 2))),
            START + timedelta(seconds=SLOT_S * int(rng.integers(slots // 2 + 1, slots + 1))),
            float(rng.uniform(5000, 20000)),
        )
        for k in range(n)
    )
    return Snapshot(
        START, SLOT_S, slots, wired.site, wired.circuits, evses, sessions, current_limits=wired.current_limits
    ).validate()


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_every_algorithm_keeps_the_exact_line_limits(algorithm: Algorithm) -> None:
    snap = us_site()
    sch = optimize(snap, Options(algorithm=algorithm))
    assert_invariants(snap, sch, respects_limits=algorithm is not Algorithm.UNCONTROLLED)
    hard = [v for v in sch.violations if v.kind == "phasor"]
    if algorithm is Algorithm.UNCONTROLLED:
        assert hard, "the uncontrolled plan should break the binding transformer limit"
    else:
        assert not hard


@pytest.mark.parametrize("loss", [0.02, 0.005, 0.001])
def test_lp_is_within_one_percent_of_the_exact_soc_optimum(loss: float) -> None:
    for seed in (1, 2):
        snap = us_site(12, 12, seed=seed)
        p = compile_problem(snap)
        exact = exact_energy(p)
        assert exact.status == "optimal"
        sch = optimize(snap, Options(min_current=False, current_limit_loss=loss))
        # 0 violations of the exact constraint (below_min: no minimum-current repair asked for here)
        assert not [v for v in check(p, sch.power_w) if v.kind != "below_min"]
        got = sch.total_energy_wh / 1000.0
        assert got >= exact.energy_kwh * (1 - loss) - 1e-6, (got, exact.energy_kwh)
        assert got <= exact.energy_kwh * (1 + 1e-6) + 1e-6
        # The exact limit binds: without the transformer's limits more is delivered.
        free = replace(snap, current_limits=())
        assert optimize(free, Options(min_current=False)).total_energy_wh / 1000.0 > exact.energy_kwh * 1.05


def test_mixed_line_to_neutral_and_line_to_line_on_one_feeder() -> None:
    """A 3-phase 230 V EVSE and a 400 V line-to-line one on a feeder with line limits: the
    feeder's limits become phasors over both (the linear rows would miss the angles)."""
    three = EvseLimits("t", "f", 3, ALL_PHASES, 230.0, 6.0, 32.0)
    ll = EvseLimits("l", "f", 1, (L1,), 400.0, 6.0, 32.0, lines=(L1, L2))
    ln = EvseLimits("n", None, 1, (L3,), 230.0, 6.0, 32.0)
    feeder = CircuitLimits("f", None, None, {L1: 40.0, L2: 40.0, L3: 40.0})
    site = SiteLimits(phase_limits_a={L3: 50.0})
    wired = compile_wiring(site, (feeder,), (three, ll, ln))
    assert wired.circuits[0].phase_limits_a == {}  # moved into phasor limits
    assert wired.site.phase_limits_a == {}
    by_id = {c.id: c for c in wired.current_limits}
    assert set(by_id) == {"site:L3", "f:L1", "f:L2", "f:L3"}
    assert sorted(by_id["f:L1"].terms) == [("l", 1.0, 30.0), ("t", 1.0, 0.0)]
    assert sorted(by_id["site:L3"].terms) == [("n", 1.0, 120.0), ("t", 1.0, 120.0)]
    sessions = tuple(SessionDemand(f"s{e}", e, START, START + timedelta(hours=2), 60000.0) for e in ("t", "l", "n"))
    snap = Snapshot(
        START, SLOT_S, 8, wired.site, wired.circuits, (three, ll, ln), sessions, current_limits=wired.current_limits
    ).validate()
    sch = optimize(snap)
    assert_invariants(snap, sch)
    # Phasors 30 degrees apart on L1: together they may exceed 40 A of plain sums (32 + 32 cos 30 ...).
    i_t, i_l = sch.current_a[0, 0], sch.current_a[1, 0]
    assert i_t + i_l > 40.0 + 0.5
    assert abs(i_t + i_l * np.exp(1j * math.radians(30))) <= 40.0 + 1e-4


def test_only_line_to_neutral_keeps_the_linear_rows() -> None:
    evses = (EvseLimits("a", "f", 1, (L2,)), EvseLimits("b", "f", 3))
    feeder = CircuitLimits("f", None, None, {L1: 40.0})
    wired = compile_wiring(SiteLimits(), (feeder,), evses)
    assert wired.current_limits == () and wired.circuits == (feeder,)


def test_one_phase_ev_on_a_three_phase_evse_loads_its_first_phase_only() -> None:
    evse = EvseLimits("t", None, 3, (L2, L3, L1), 230.0, 6.0, 32.0)
    limits = (CurrentLimit("L1", 10.0, (("t", 1.0, 0.0),)), CurrentLimit("L2", 100.0, (("t", 1.0, -120.0),)))
    s = SessionDemand("s", "t", START, START + timedelta(hours=1), 50000.0, phases=1)
    snap = Snapshot(START, SLOT_S, 4, SiteLimits(), (), (evse,), (s,), current_limits=limits).validate()
    sch = optimize(snap)
    assert sch.current_a[0, 0] == pytest.approx(32.0, abs=1e-6)  # L1 (its third conductor) unloaded
    assert_invariants(snap, sch)


def test_plain_snapshots_build_no_phasor_rows() -> None:
    snap = us_site()
    plain = replace(snap, current_limits=())
    assert "phasor" not in {f[0] for f in build(compile_problem(plain)).families}
    assert "phasor" in {f[0] for f in build(compile_problem(snap)).families}


@pytest.mark.parametrize("algorithm", [Algorithm.LP, Algorithm.EDF])
def test_a_short_session_names_the_full_line_limit(algorithm: Algorithm) -> None:
    """Two 208 V EVSEs on one line pair behind a tight line limit: each car is short, and the
    reason is the line limit it adds to (not 'priority')."""
    evses = tuple(EvseLimits(f"e{k}", None, 1, (L1,), 208.0, 6.0, 32.0, lines=(L1, L2)) for k in range(2))
    limits = (CurrentLimit("tx:L1", 40.0, (("e0", 1.0, 30.0), ("e1", 1.0, 30.0))),)
    sessions = tuple(SessionDemand(f"s{k}", f"e{k}", START, START + timedelta(hours=1), 50000.0) for k in range(2))
    snap = Snapshot(START, SLOT_S, 4, SiteLimits(), (), evses, sessions, current_limits=limits).validate()
    sch = optimize(snap, Options(algorithm=algorithm))
    reasons = [sch.session(f"s{k}").limited_by for k in range(2)]
    assert any(r[0] == "line:tx:L1" for r in reasons), reasons  # EDF may fill one car first (own_max)
    assert not any("priority" in r for r in reasons), reasons
    # Loosen the limit: the cars run at their own maximum instead.
    free = replace(snap, current_limits=(CurrentLimit("tx:L1", 100.0, limits[0].terms),))
    assert optimize(free, Options(algorithm=algorithm)).session("s0").limited_by[0] == "own_max"


def test_rooms_shared_by_kind_equal_rooms_computed_per_session() -> None:
    p = compile_problem(us_site(30, 8, seed=4))
    phasors = session_phasors(p.phasor_coef)
    kinds = phasor_kinds(phasors)
    assert len(set(kinds.of_session)) < p.n  # thirty EVSEs on three line pairs: a few kinds
    rng = np.random.default_rng(4)
    start = rng.uniform(0.0, 1.0, p.n)
    shared = LineState(p.phasor_coef, p.phasor_limit_a, start, phasors, kinds)
    alone = LineState(p.phasor_coef, p.phasor_limit_a, start, phasors)
    for i in rng.permutation(p.n).tolist():
        assert [shared.room(k) for k in range(p.n)] == [alone.room(k) for k in range(p.n)]
        add = 0.5 * alone.room(i)
        shared.take(i, add)
        alone.take(i, add)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=examples(60), deadline=None)
def test_kinds_are_the_sessions_with_equal_limits_and_coefficients(seed: int) -> None:
    """phasor_kinds (one np.unique) against the definition: equal limit lists and coefficient bits."""
    rng = np.random.default_rng(seed)
    limits, sessions = int(rng.integers(1, 6)), int(rng.integers(1, 12))
    columns = rng.normal(size=(limits, 3)) + 1j * rng.normal(size=(limits, 3))
    columns[rng.random((limits, 3)) < 0.4] = 0  # a few shapes, some with no limit at all
    dense = columns[:, rng.integers(0, 3, sessions)]
    dense[0, rng.random(sessions) < 0.2] *= -1  # and a few coefficients that differ in sign only
    per_session = session_phasors(sp.csr_array(dense))
    seen: dict[tuple[bytes, bytes], int] = {}
    pairs = [per_session[k] for k in range(sessions)]
    want = [seen.setdefault((i.tobytes(), a.tobytes()), len(seen)) for i, a in pairs]
    kinds = phasor_kinds(per_session)
    assert kinds.of_session == want
    for c in range(limits):
        assert kinds.by_limit.get(c, []) == sorted({k for s, k in enumerate(want) if dense[c, s] != 0})


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=examples(60), deadline=None)
def test_magnitudes_are_the_complex_products_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    limits, sessions, slots = int(rng.integers(1, 6)), int(rng.integers(1, 12)), int(rng.integers(1, 9))
    dense = rng.normal(size=(limits, sessions)) + 1j * rng.normal(size=(limits, sessions))
    dense[rng.random((limits, sessions)) < 0.4] = 0
    coef = sp.csr_array(dense)
    x = rng.exponential(3.0, (sessions, slots)) * (rng.random((sessions, slots)) < 0.7)
    np.testing.assert_array_equal(magnitudes(coef, x), np.abs(coef @ x.astype(np.complex128)))
