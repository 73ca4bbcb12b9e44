"""Line-to-line EVSEs and transformers in the controller: the budget checks the exact line currents."""

from __future__ import annotations

import cmath
import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.controller import lines
from ems.controller.belief import Bound
from ems.controller.budget import Budget, EvsePlace, Limits
from ems.controller.dispatch import Dispatcher, DispatchSettings
from ems.controller.fast_cut import node_factors, proportional_cuts
from ems.controller.planning import PlanningSettings, build_snapshot, evse_place, limits_now, reserve, tx_profile
from ems.controller.state import LiveState
from ems.domain import composite
from ems.domain.commands import ChargingSchedulePeriod, SetChargingLimit
from ems.domain.composite import Hardware
from ems.domain.events import SessionStarted
from ems.domain.session import ChargingSession
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, TransformerSpec
from ems.domain.units import Phase
from ems.optimizer.plan import optimize
from tests.examples import examples

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SETTINGS = PlanningSettings(slot_s=300, horizon_slots=12)


def ll(evse_id: int, a: Phase, b: Phase, max_a: float = 32.0) -> EvseSpec:
    return EvseSpec(evse_id, phases=1, phase_map=(a,), voltage_v=208.0, max_current_a=max_a, lines=(a, b))


def pod_site(limit_a: float = 80.0, primary_a: float | None = None) -> Site:
    """A Caltech-like pod: EVSEs between L1-L2, L2-L3 and L3-L1 on one 208 V panel behind a 480 V delta-wye."""
    transformer = None
    if primary_a is not None:
        transformer = TransformerSpec("delta-wye", 4.0, {q: primary_a for q in (L1, L2, L3)})
    return Site(
        id="garage",
        circuits=(Circuit("pod", phase_limits_a={q: limit_a for q in (L1, L2, L3)}, transformer=transformer),),
        stations=(
            StationSpec("A", circuit_id="pod", evses=(ll(1, L1, L2), ll(2, L1, L2))),
            StationSpec("B", circuit_id="pod", evses=(ll(1, L2, L3),)),
            StationSpec("C", circuit_id="pod", evses=(ll(1, L3, L1), ll(2, L3, L1))),
        ),
    )


def flat(amps: float) -> Bound:
    return Bound((T0,), (amps,), (1,))


def budget_for(site: Site, amps: dict[tuple[str, int], float]) -> tuple[Budget, dict[tuple[str, int], EvsePlace]]:
    state = LiveState([site])
    limits = limits_now(site, T0, SETTINGS)
    places = {k: evse_place(state, *k) for k in amps}
    budget = Budget(limits, limits.breakpoints(T0))
    for k, a in amps.items():
        budget.book(k, flat(a), places[k])
    return budget, places


def line_current(site: Site, amps: dict[tuple[str, int], float], line: Phase) -> float:
    """The textbook line current on the pod's panel: the sum of branch phasors leaving ``line``."""
    z = 0j
    for (sid, e), a in amps.items():
        spec = next(x for st_ in site.stations if st_.id == sid for x in st_.evses if x.evse_id == e)
        assert spec.lines is not None
        p, q = spec.lines
        ang = {L1: 0.0, L2: -120.0, L3: 120.0}
        v = cmath.exp(1j * math.radians(ang[p])) - cmath.exp(1j * math.radians(ang[q]))
        branch = a * v / abs(v)
        z += branch if p == line else -branch if q == line else 0
    return abs(z)


def test_line_to_line_budget_matches_the_textbook_line_current() -> None:
    site = pod_site()
    amps = {("A", 1): 32.0, ("A", 2): 20.0, ("B", 1): 10.0, ("C", 1): 32.0, ("C", 2): 7.0}
    budget, _ = budget_for(site, amps)
    for q in (L1, L2, L3):
        assert budget.line_worst_a(f"pod:{q}")[0] == pytest.approx(line_current(site, amps, q))


def test_the_linear_sum_would_wrongly_accept_and_wrongly_refuse() -> None:
    site = pod_site(limit_a=80.0)
    # 52 A L1-L2 and 50 A L3-L1: line L1 carries |52 e^{j30} + 50 e^{-j30}| = 88.3 A > 80 A. Counted per
    # phase map (L1 for the first, L3 for the second), a linear row sees 52 A on L1: it would accept.
    over = {("A", 1): 32.0, ("A", 2): 20.0, ("C", 1): 32.0, ("C", 2): 18.0}
    budget, places = budget_for(site, {k: 0.0 for k in over})
    for k in list(over)[:-1]:
        assert budget.fits(k, flat(over[k]), places[k])
        budget.book(k, flat(over[k]), places[k])
    last = list(over)[-1]
    assert not budget.fits(last, flat(over[last]), places[last])
    budget.book(last, flat(over[last]), places[last])
    assert line_current(site, over, L1) > 80.0
    assert any("pod:L1" in v for v in budget.violations())
    # 45 + 40 A: a conservative per-branch sum (85 A) would refuse; the line carries 73.7 A.
    under = {("A", 1): 32.0, ("A", 2): 13.0, ("C", 1): 32.0, ("C", 2): 8.0}
    budget, places = budget_for(site, {k: 0.0 for k in under})
    for k, a in under.items():
        assert budget.fits(k, flat(a), places[k])
        budget.book(k, flat(a), places[k])
    assert sum(under.values()) > 80.0 and line_current(site, under, L1) <= 80.0
    assert budget.violations() == []


def test_worst_case_counts_cars_drawing_less_than_their_bound() -> None:
    """Behind a delta-wye the primary's terms span 120 degrees: a car drawing less can raise the line current,
    so the budget checks the largest current over every draw within the bounds, not the bounds' point."""
    w = np.zeros(lines.DIRECTIONS)
    w[1], w[9] = 1.0, 0.5  # 30 and -90 degrees
    point = abs(1.0 * cmath.exp(1j * math.radians(30)) + 0.5 * cmath.exp(1j * math.radians(-90)))
    assert point == pytest.approx(math.sqrt(0.75))
    assert float(lines.worst_a(w)) == pytest.approx(1.0)  # the second car stops drawing


@given(st.lists(st.floats(0, 40), min_size=lines.DIRECTIONS, max_size=lines.DIRECTIONS))
@settings(max_examples=examples(200), deadline=None)
def test_worst_case_is_the_largest_vertex_of_the_box(weights: list[float]) -> None:
    w = np.array(weights)
    units = np.exp(1j * np.radians(30.0 * np.arange(lines.DIRECTIONS)))
    brute = max(
        abs(sum(u * x for u, x, on in zip(units, w, mask, strict=True) if on))
        for mask in itertools.product([0, 1], repeat=lines.DIRECTIONS)
    )
    assert float(lines.worst_a(w)) == pytest.approx(brute, abs=1e-9)


def test_fits_is_exact_on_the_primary_of_a_delta_wye() -> None:
    site = pod_site(limit_a=1000.0, primary_a=20.0)
    budget, places = budget_for(site, {("A", 1): 0.0, ("B", 1): 0.0})
    assert budget.fits(("A", 1), flat(32.0), places[("A", 1)])
    budget.book(("A", 1), flat(32.0), places[("A", 1)])
    worst = max(float(budget.line_worst_a(f"pod:primary:{q}")[0]) for q in (L1, L2, L3))
    assert 0 < worst <= 20.0
    assert budget.violations() == []
    # Adding any L2-L3 load must keep the worst case of every primary line within 20 A.
    for a in (5.0, 10.0, 20.0, 32.0):
        ok = budget.fits(("B", 1), flat(a), places[("B", 1)])
        trial, _ = budget_for(site, {("A", 1): 32.0, ("B", 1): a})
        assert ok == (trial.violations() == [])


def test_proportional_cuts_bring_every_line_within_its_new_limit() -> None:
    site = pod_site(limit_a=80.0)
    amps = {("A", 1): 32.0, ("A", 2): 32.0, ("B", 1): 32.0, ("C", 1): 32.0, ("C", 2): 32.0}
    state = LiveState([site])
    places = {k: evse_place(state, *k) for k in amps}
    d = Dispatcher(DispatchSettings())
    for k, a in amps.items():
        b = d.belief(k[0], k[1], Hardware(32.0, 1, 208.0))
        b.transaction(f"tx-{k[0]}{k[1]}", T0)
        cmd = SetChargingLimit(
            evse_id=k[1],
            profile_id=1000 + k[1],
            purpose="TxProfile",
            stack_level=1,
            rate_unit="A",
            periods=(ChargingSchedulePeriod(start_offset_s=0, limit=a, number_phases=1),),
            transaction_id=f"tx-{k[0]}{k[1]}",
        )
        b.worlds = {(composite.from_command(cmd),)}
    limits = limits_now(site, T0, SETTINGS)
    budget = d.budget(limits, places, T0)
    assert budget.violations(), "64 A on each of two branches 60 degrees apart: 111 A on the line"
    factors = node_factors(budget)
    assert set(factors) >= {"pod:L1"}
    sessions = [(k, f"s-{k}", f"tx-{k[0]}{k[1]}", 6.0) for k in amps]
    cuts = proportional_cuts(budget, d.beliefs, places, sessions, T0, 900, 1000)
    assert len(cuts) == len(amps)
    after = Budget(limits, budget.grid)
    for c in cuts:
        key = (c.station_id, c.command.evse_id)
        bound = Bound((T0,), (c.command.periods[0].limit,), (1,))
        after.book(key, bound, places[key])
    assert after.violations() == []


def live(site: Site, keys: list[tuple[str, int]], energy_wh: float = 30_000.0) -> LiveState:
    state = LiveState([site])
    for n, (sid, e) in enumerate(keys):
        state.apply(SessionStarted(at=T0, session_id=f"s{n}", station_id=sid, evse_id=e))
        state.update_session(
            ChargingSession(
                id=f"s{n}",
                station_id=sid,
                evse_id=e,
                connector_id=e,
                transaction_id=str(10 + n),
                started_at=T0,
                departure_at=T0 + timedelta(hours=1),
                energy_requested_wh=energy_wh,
            )
        )
    return state


@pytest.mark.parametrize("primary_a", [None, 14.0])
def test_a_plan_the_optimizer_made_fits_the_exact_budget(primary_a: float | None) -> None:
    site = pod_site(limit_a=70.0, primary_a=primary_a)
    keys = [("A", 1), ("A", 2), ("B", 1), ("C", 1), ("C", 2)]
    state = live(site, keys)
    snap = build_snapshot(site, state, T0, SETTINGS)
    assert snap.problems() == []
    assert snap.current_limits and all(not c.phase_limits_a for c in snap.circuits)
    assert {e.lines for e in snap.evses} == {(L1, L2), (L2, L3), (L3, L1)}
    schedule = optimize(snap)
    limits = limits_now(site, T0, SETTINGS)
    budget = Budget(limits, limits.breakpoints(T0) | {T0 + timedelta(seconds=300 * k) for k in range(3)})
    for s in state.active("garage"):
        spec = state.evse_spec(s.station_id, s.evse_id)
        cmd = tx_profile(schedule, s, spec, SETTINGS)
        assert cmd is not None
        p = cmd.periods
        bound = Bound(
            tuple(T0 + timedelta(seconds=x.start_offset_s) for x in p), tuple(x.limit for x in p), (1,) * len(p)
        )
        place = evse_place(state, s.station_id, s.evse_id)
        assert budget.fits((s.station_id, s.evse_id), bound, place)
        budget.book((s.station_id, s.evse_id), bound, place)
    assert budget.violations() == []
    used = max(float(budget.line_worst_a(r).max()) / cap for r, cap in budget.line_cap.items())
    assert used > 0.9, "the binding lines are used, not left idle by a conservative bound"


def test_reserve_lowers_each_line_limit_by_the_fixed_loads_worst_case() -> None:
    site = pod_site(limit_a=70.0)
    state = live(site, [("A", 1)])
    snap = build_snapshot(site, state, T0, SETTINGS)
    fixed = [(evse_place(state, "C", 1), 10.0, 2080.0)]
    wiring = lines.wiring_of(site)
    assert wiring is not None
    reserved = reserve(snap, fixed, wiring)
    by_id = {c.id: c.limit_a for c in reserved.current_limits}
    before = {c.id: c.limit_a for c in snap.current_limits}
    assert by_id["pod:L1"] == pytest.approx(before["pod:L1"] - 10.0)  # L3-L1 loads L1 ...
    if "pod:L2" in by_id:
        assert by_id["pod:L2"] == pytest.approx(before["pod:L2"])  # ... not L2


def test_a_site_without_line_to_line_evses_is_unchanged() -> None:
    site = Site(
        id="s",
        circuits=(Circuit("f", phase_limits_a={L1: 32.0}),),
        stations=(StationSpec("X", circuit_id="f"),),
    )
    assert lines.wiring_of(site) is None
    limits = limits_now(site, T0, SETTINGS)
    assert limits.wiring is None and not limits.line_limits_a
    assert dict(next(n for n in limits.nodes if n.id == "f").phase_limits_a) == {L1: 32.0}
    assert isinstance(limits, Limits)


def test_measured_line_currents_are_phasor_magnitudes() -> None:
    site = pod_site()
    wiring = lines.wiring_of(site)
    amps = {("A", 1): 30.0, ("C", 1): 20.0}
    draws = [("pod", (L1,), (L1, L2), [30.0]), ("pod", (L3,), (L3, L1), [20.0])]
    got = lines.line_currents_a(wiring, "pod", draws)
    for q in (L1, L2, L3):
        assert got[q] == pytest.approx(line_current(site, amps, q))
    assert got[L1] < 50.0, "not the per-branch sum"
    # A site without line-to-line EVSEs: per-phase sums, as before.
    assert lines.line_currents_a(None, "site", [(None, (L1, L2, L3), None, [10.0, 10.0, 5.0])]) == {
        L1: 10.0,
        L2: 10.0,
        L3: 5.0,
    }


def test_site_load_reports_the_connections_exact_line_currents() -> None:
    from ems.domain.events import MeterSampled
    from ems.domain.session import Measurand, MeterSample

    site = pod_site()
    state = live(site, [("A", 1), ("C", 1)])
    samples = []
    for n, (sid, a) in enumerate((("A", 30.0), ("C", 20.0))):
        samples.append(
            MeterSample(
                station_id=sid,
                evse_id=1,
                session_id=f"s{n}",
                measured_at=T0 + timedelta(seconds=10),
                measurand=Measurand.CURRENT_IMPORT,
                value=a,
                phase="L1",
            )
        )
    state.apply(MeterSampled(at=T0, station_id="A", evse_id=1, samples=tuple(samples)))
    reading = state.site_load("garage")
    amps = {("A", 1): 30.0, ("C", 1): 20.0}
    for q in (L1, L2, L3):
        assert reading.phase_current_a[q] == pytest.approx(line_current(site, amps, q))


def test_a_raise_that_fits_at_the_bounds_point_but_not_when_a_car_draws_less_is_refused() -> None:
    """Primary line A of the delta-wye carries (I_AB e^{j30} + I_BC e^{-j90}) / 4: 120 degrees apart. With the
    L2-L3 car bounded at 16 A, raising the L1-L2 car to 32 A gives 6.93 A at the bounds' point, within 7.5 A,
    but 8 A once the L2-L3 car stops drawing: refused. 29 A (7.25 A at worst) fits."""
    base = pod_site(limit_a=1000.0)
    transformer = TransformerSpec("delta-wye", 4.0, {L1: 7.5, L2: 100.0, L3: 100.0})
    site = Site(
        id=base.id,
        circuits=(Circuit("pod", phase_limits_a=base.circuits[0].phase_limits_a, transformer=transformer),),
        stations=base.stations,
    )
    budget, places = budget_for(site, {("A", 1): 0.0, ("B", 1): 16.0})
    point = abs(32 * cmath.exp(1j * math.radians(30)) + 16 * cmath.exp(1j * math.radians(-90))) / 4
    assert point == pytest.approx(6.93, abs=0.01) and point < 7.5
    assert not budget.fits(("A", 1), flat(32.0), places[("A", 1)])
    assert budget.fits(("A", 1), flat(29.0), places[("A", 1)])
    budget.book(("A", 1), flat(32.0), places[("A", 1)])
    assert [v for v in budget.violations() if v.startswith("pod:primary:L1")]


def test_the_console_load_page_shows_exact_line_currents() -> None:
    from ems.console.load import _line_currents

    site = pod_site()
    amps = {("A", 1): 30.0, ("C", 1): 20.0}
    got = _line_currents(site, {("A", 1, 0): [30.0], ("C", 1, 0): [20.0]}, 2)
    for q in (L1, L2, L3):
        assert got[q][0] == pytest.approx(line_current(site, amps, q))
        assert got[q][1] == 0.0
