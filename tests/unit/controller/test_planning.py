from datetime import UTC, datetime, timedelta

import pytest

from ems.controller.planning import (
    PlanningSettings,
    build_snapshot,
    failsafe_profile,
    slot_capacity,
    tx_profile,
)
from ems.controller.state import LiveState
from ems.domain.capacity import CapacityInterval, LimitSource
from ems.domain.events import SessionStarted
from ems.domain.session import ChargingSession
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.units import Phase
from ems.optimizer.estimates import History, PastSession
from ems.optimizer.plan import optimize

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SITE = Site(
    id="depot",
    capacity_w=22_000,
    failsafe_capacity_w=11_040,
    circuits=(Circuit("feeder", capacity_w=15_000),),
    stations=(
        StationSpec("CP1", circuit_id="feeder", evses=(EvseSpec(1, phases=3, max_current_a=32),)),
        StationSpec(
            "CP2", circuit_id="feeder", evses=(EvseSpec(1, phases=1, phase_map=(Phase.L2,), max_current_a=32),)
        ),
    ),
)
SETTINGS = PlanningSettings(slot_s=300, horizon_slots=24)


def interval(start_min: int, end_min: int, capacity_w: float | None) -> CapacityInterval:
    return CapacityInterval(
        start=T0 + timedelta(minutes=start_min),
        end=T0 + timedelta(minutes=end_min),
        capacity_w=capacity_w,
        capacity_source=LimitSource.FORECAST,
    )


def test_slot_capacity_takes_the_lowest_bound_within_each_slot() -> None:
    caps = slot_capacity([interval(0, 7, 20_000), interval(7, 60, 5_000)], T0, 300, 4)
    assert caps == (20_000, 5_000, 5_000, 5_000)
    assert slot_capacity([interval(0, 60, None)], T0, 300, 2) is None


def test_slots_past_the_timeline_keep_the_last_known_bound_never_unlimited() -> None:
    assert slot_capacity([interval(0, 5, 8_000)], T0, 300, 3) == (8_000, 8_000, 8_000)


def live_with_sessions() -> LiveState:
    state = LiveState([SITE])
    for n, station in enumerate(("CP1", "CP2")):
        state.apply(SessionStarted(at=T0, session_id=f"s{n}", station_id=station, evse_id=1))
        state.update_session(
            ChargingSession(
                id=f"s{n}",
                station_id=station,
                evse_id=1,
                connector_id=1,
                transaction_id=str(10 + n),
                started_at=T0,
                departure_at=T0 + timedelta(hours=2),
                energy_requested_wh=10_000.0,
            )
        )
    return state


def test_snapshot_carries_tree_sessions_and_capacity() -> None:
    snap = build_snapshot(SITE, live_with_sessions(), T0, SETTINGS, {None: [interval(0, 120, 18_000)]})
    assert snap.problems() == []
    assert snap.site.capacity_w == (18_000,) * 24
    assert {e.id for e in snap.evses} == {"CP1/1", "CP2/1"}
    assert {e.circuit for e in snap.evses} == {"feeder"}
    assert [s.energy_wh for s in snap.sessions] == [10_000.0, 10_000.0]
    assert snap.circuits[0].capacity_w == (15_000,) * 24


def test_schedule_becomes_tx_profiles_within_limits() -> None:
    state = live_with_sessions()
    snap = build_snapshot(SITE, state, T0, SETTINGS)
    schedule = optimize(snap)
    total_first_slot_w = 0.0
    for session in state.active("depot"):
        spec = state.evse_spec(session.station_id, session.evse_id)
        cmd = tx_profile(schedule, session, spec, SETTINGS)
        assert cmd is not None and cmd.purpose == "TxProfile" and cmd.rate_unit == "A"
        assert cmd.transaction_id == session.transaction_id
        assert cmd.duration_s == 900 and cmd.start_at == T0
        for p in cmd.periods:
            assert p.limit == 0 or spec.min_current_a <= p.limit <= spec.max_current_a + 1e-6
        total_first_slot_w += cmd.periods[0].limit * 230 * spec.phases
    assert total_first_slot_w <= 15_000 * 1.001, "the feeder limit holds in what is sent"


def test_failsafe_share_respects_site_failsafe_and_minimum_current() -> None:
    cmd = failsafe_profile(SITE, SITE.stations[0].evses[0], evse_count=2)
    assert cmd is not None and cmd.purpose == "TxDefaultProfile"
    assert cmd.periods[0].limit == pytest.approx(8.0)  # 5520 W over 3 phases at 230 V
    starved = failsafe_profile(SITE, SITE.stations[0].evses[0], evse_count=10)
    assert starved is not None and starved.periods[0].limit == 0.0, "below 6 A the EVSE must pause"
    assert failsafe_profile(Site(id="x"), EvseSpec(1), 1).periods[0].limit == 0.0, "no fail-safe set: pause"
    busy = failsafe_profile(SITE, SITE.stations[0].evses[0], evse_count=2, busy=True)
    assert busy.periods[0].limit == 0.0, "an EVSE with a session: its default never adds to its TxProfile"


def test_sessions_that_say_nothing_get_the_estimate_from_history() -> None:
    state = LiveState([SITE])
    # s0: card A, says nothing; s1: card A with a departure from the EV; s2: a stranger, says nothing.
    for n, (station, tag) in enumerate((("CP1", "A"), ("CP2", "A"))):
        state.apply(SessionStarted(at=T0, session_id=f"s{n}", station_id=station, evse_id=1, id_tag=tag))
    state.sessions["s1"].departure_at = T0 + timedelta(hours=2)
    monday = T0.weekday()
    past = [PastSession("A", monday, h * 3600, kwh * 1000) for h, kwh in ((5, 12), (6, 14), (7, 16), (8, 18))]
    history = History(past)

    def demands(h: History | None) -> dict[str, tuple[datetime, float]]:
        snap = build_snapshot(SITE, state, T0, SETTINGS, history=h)
        return {s.id: (s.departure, s.energy_wh) for s in snap.sessions}

    with_history = demands(history)
    assert with_history["s0"] == (T0 + timedelta(hours=5.75), 15_000)  # 25th pct stay, median energy
    assert with_history["s1"] == (T0 + timedelta(hours=2), 15_000)  # the EV's departure wins
    without = demands(None)
    assert without["s0"] == (T0 + timedelta(hours=8), 80_000)
    # No usable history at all: the planning defaults, not the estimator's.
    assert demands(History(past[:2]))["s0"] == (T0 + timedelta(hours=8), 80_000)
    # Past the estimate and still drawing: planned a little further (it may want more than the median).
    state.sessions["s0"].delivered_wh = 14_500
    assert demands(history)["s0"][1] == 14_500 + SETTINGS.estimate_headroom_wh
    state.sessions["s0"].delivered_wh = 0
    # A driver's energy request wins over the estimate.
    state.sessions["s0"].energy_requested_wh = 30_000
    assert demands(history)["s0"] == (T0 + timedelta(hours=5.75), 30_000)
