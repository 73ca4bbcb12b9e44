"""A capacity drop's proportional cuts: built below each EVSE's bound, they are cuts whatever the EVSE holds,
and together they bring every node within its new limits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.controller.budget import SITE, Budget, EvsePlace, Limits, NodeLimits
from ems.controller.dispatch import Dispatcher, DispatchSettings, Kind
from ems.controller.fast_cut import proportional_cuts, scaled_periods
from ems.domain import composite
from ems.domain.commands import ChargingSchedulePeriod, CommandStatus, SetChargingLimit
from ems.domain.composite import Hardware
from ems.domain.units import ALL_PHASES, Phase
from tests.examples import examples

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=137, microseconds=400_000)
V = 230.0


def tx(evse: int, limits: list[tuple[int, float, int]], start: datetime, tx_id: str = "t") -> SetChargingLimit:
    return SetChargingLimit(
        evse_id=evse,
        profile_id=1000 + evse,
        purpose="TxProfile",
        stack_level=1,
        rate_unit="A",
        periods=tuple(ChargingSchedulePeriod(start_offset_s=o, limit=a, number_phases=p) for o, a, p in limits),
        start_at=start,
        duration_s=900,
        transaction_id=tx_id,
    )


def default(evse: int, amps: float) -> SetChargingLimit:
    return SetChargingLimit(
        evse_id=evse,
        profile_id=900 + evse,
        purpose="TxDefaultProfile",
        rate_unit="A",
        periods=(ChargingSchedulePeriod(start_offset_s=0, limit=amps),),
    )


_tokens = itertools.count(1)


def send(d: Dispatcher, station: str, command: SetChargingLimit, status: CommandStatus | None) -> None:
    """``command`` sent outside any round (the belief records it); answered with ``status`` (``None``: in flight)."""
    belief = d.beliefs[(station, command.evse_id)]
    token = next(_tokens)
    belief.sent(token, composite.from_command(command))
    if status is not None:
        belief.answered(token, status)


periods = st.lists(
    st.tuples(st.sampled_from([0.0, 6.0, 10.5, 16.0, 32.0]), st.sampled_from([1, 3])), min_size=1, max_size=4
)


@st.composite
def evse_states(draw: st.DrawFn) -> tuple[Dispatcher, Hardware]:
    """One EVSE whose belief holds random defaults and TxProfiles, accepted, refused, lost or in flight."""
    hw = Hardware(32.0, draw(st.sampled_from([1, 3])), V)
    d = Dispatcher(DispatchSettings())
    d.belief("S", 1, hw).transaction("t", T0)
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            command = default(1, draw(st.sampled_from([0.0, 6.0, 16.0])))
        else:
            start = T0 + timedelta(seconds=draw(st.integers(0, 200)), microseconds=draw(st.integers(0, 999_999)))
            limits = [(150 * k + draw(st.integers(0, 30)) * (k > 0), a, p) for k, (a, p) in enumerate(draw(periods))]
            command = tx(1, limits, start)
        status = draw(st.sampled_from([CommandStatus.ACCEPTED, CommandStatus.REJECTED, CommandStatus.TIMEOUT, None]))
        send(d, "S", command, status)
    return d, hw


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=evse_states(), factor=st.floats(0.0, 0.99), min_a=st.sampled_from([0.0, 6.0]))
def test_a_scaled_bound_is_a_cut_whatever_the_evse_holds(
    state: tuple[Dispatcher, Hardware], factor: float, min_a: float
) -> None:
    d, hw = state
    belief = d.beliefs[("S", 1)]
    before = belief.bound(NOW)
    base = NOW.replace(microsecond=0)
    built = scaled_periods(before, factor, min_a, hw, NOW, NOW + timedelta(seconds=900), base)
    if built is None:
        assert all(a == 0 for t, a in zip(before.times, before.current_a, strict=True) if t >= NOW or a == 0)
        return
    cut = tx(1, [(p.start_offset_s, p.limit, p.number_phases or 1) for p in built], base)
    after = belief.bound_if_accepted(composite.from_command(cut), NOW)
    assert before.dominates(after, since=NOW), "the station would apply more somewhere"
    # And it does lower: while its transaction runs, the station applies at most the scaled share of the bound
    # (the bound itself may stay higher: it also counts "no transaction", where the default applies).
    b, phases_before = before.at(NOW)
    profile = composite.from_command(cut)
    for world in belief.possible():
        limit = composite.evse_limit(
            composite.install(world, profile), evse_id=1, t=NOW, hw=hw, tx_id="t", tx_started_at=T0
        )
        assert limit.current_a * limit.phases <= b * phases_before * factor + 1e-6


def test_cuts_fit_every_node_and_phase_and_go_out_most_urgent_first() -> None:
    d = Dispatcher(DispatchSettings())
    three, one = Hardware(32.0, 3, V), Hardware(32.0, 1, V)
    places = {
        ("A", 1): EvsePlace("feeder", ALL_PHASES, V),
        ("B", 1): EvsePlace("feeder", ALL_PHASES, V),
        ("C", 1): EvsePlace(None, (Phase.L2,), V),
    }
    for station, hw in (("A", three), ("B", three), ("C", one)):
        d.belief(station, 1, hw).transaction("t", T0)
        send(d, station, default(1, 0.0), CommandStatus.ACCEPTED)
    send(d, "A", tx(1, [(0, 32.0, 3), (300, 16.0, 3)], T0), CommandStatus.ACCEPTED)
    send(d, "B", tx(1, [(0, 3.0, 3), (300, 32.0, 3)], T0), CommandStatus.ACCEPTED)
    send(d, "C", tx(1, [(0, 32.0, 1)], T0), CommandStatus.ACCEPTED)
    limits = Limits(
        T0,
        300,
        (
            NodeLimits(SITE, None, (40_000.0,) * 12, {Phase.L2: 50.0}),
            NodeLimits("feeder", SITE, (20_000.0,) * 12, {}),
        ),
    )
    budget = d.budget(limits, places, NOW)
    assert budget.violations(), "the drop leaves the feeder and the site over"
    sessions = [(k, f"s-{k[0]}", "t", 6.0) for k in places]
    cuts = proportional_cuts(budget, d.beliefs, places, sessions, NOW, 900, 1000)
    assert [c.station_id for c in cuts] == ["A", "C", "B"], "the largest drop now first"
    sends = d.cuts(cuts, NOW)
    assert all(s.kind is Kind.CUT for s in sends)
    for s in sends:
        d.answered(s, CommandStatus.ACCEPTED)
    assert not d.budget(limits, places, NOW).violations(), "every node and phase within its limits, at every instant"


def test_an_evse_that_may_draw_nothing_gets_no_cut() -> None:
    d = Dispatcher(DispatchSettings())
    place = EvsePlace(None, ALL_PHASES, V)
    for station, amps in (("A", 32.0), ("B", 0.0)):
        d.belief(station, 1, Hardware(32.0, 3, V)).transaction("t", T0)
        send(d, station, default(1, 0.0), CommandStatus.ACCEPTED)
        send(d, station, tx(1, [(0, amps, 3)], T0), CommandStatus.ACCEPTED)
    limits = Limits(T0, 300, (NodeLimits(SITE, None, (11_000.0,) * 12, {}),))
    places = {("A", 1): place, ("B", 1): place}
    budget = d.budget(limits, places, NOW)
    cuts = proportional_cuts(budget, d.beliefs, places, [(k, "s", "t", 6.0) for k in places], NOW, 900, 1000)
    assert [c.station_id for c in cuts] == ["A"]
    assert cuts[0].command.periods[0].limit == 15.9  # 11 kW / (32 A * 3 * 230 V) of 32 A, rounded down


def test_only_evses_with_a_session_are_scaled_into_the_room_the_others_leave() -> None:
    """An idle EVSE keeps its 16 A default: the charging ones share what is left, and the site fits."""
    d = Dispatcher(DispatchSettings())
    place = EvsePlace(None, ALL_PHASES, V)
    for station in ("A", "B", "IDLE"):
        d.belief(station, 1, Hardware(32.0, 3, V)).transaction(None if station == "IDLE" else "t", T0)
        send(d, station, default(1, 16.0 if station == "IDLE" else 0.0), CommandStatus.ACCEPTED)
    for station in ("A", "B"):
        send(d, station, tx(1, [(0, 32.0, 3)], T0), CommandStatus.ACCEPTED)
    places = {(s, 1): place for s in ("A", "B", "IDLE")}
    limits = Limits(T0, 300, (NodeLimits(SITE, None, (30_000.0,) * 12, {}),))
    budget = d.budget(limits, places, NOW)
    sessions = [((s, 1), f"s-{s}", "t", 6.0) for s in ("A", "B")]
    fixed = Budget(limits, budget.grid)
    fixed.book(("IDLE", 1), d.beliefs[("IDLE", 1)].bound(NOW), place)
    cuts = proportional_cuts(budget, d.beliefs, places, sessions, NOW, 900, 1000, fixed)
    for s in d.cuts(cuts, NOW):
        d.answered(s, CommandStatus.ACCEPTED)
    assert not d.budget(limits, places, NOW).violations()
    # 30 kW less the idle EVSE's 11 kW, shared by two 22 kW EVSEs: 18.96 kW / 44.16 kW of 32 A each.
    assert [c.command.periods[0].limit for c in cuts] == [13.7, 13.7]
