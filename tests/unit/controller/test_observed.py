"""What each car takes, from meter readings to the snapshot to the plan (controller side)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ems.controller.belief import EvseBelief
from ems.controller.observed import draws
from ems.controller.planning import PlanningSettings, build_snapshot
from ems.controller.state import LiveState
from ems.domain.composite import Hardware, InstalledProfile, Period
from ems.domain.events import MeterSampled, SessionStarted
from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.optimizer.draw import DRAW_HEADROOM_A
from ems.optimizer.plan import optimize

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SITE = Site(
    id="depot",
    capacity_w=22_080,
    stations=(
        StationSpec("CP1", evses=(EvseSpec(1, phases=3, max_current_a=32),)),
        StationSpec("CP2", evses=(EvseSpec(1, phases=3, max_current_a=32),)),
    ),
)
SETTINGS = PlanningSettings(slot_s=300, horizon_slots=12)
HW = Hardware(max_current_a=32.0, phases=3)


def _state() -> LiveState:
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
                departure_at=T0 + timedelta(hours=1),
                energy_requested_wh=60_000.0,
            )
        )
    return state


def _reading(state: LiveState, station: str, session: str, amps: tuple[float, ...], at: datetime) -> None:
    phases = ("L1", "L2", "L3")
    samples = tuple(
        MeterSample(station, 1, at, Measurand.CURRENT_IMPORT, a, session_id=session, phase=phases[k])
        for k, a in enumerate(amps)
    )
    state.apply(MeterSampled(at=at, station_id=station, evse_id=1, samples=samples))


def _beliefs(limit_cp1_a: float | None = None) -> dict[tuple[str, int], EvseBelief]:
    out = {(st, 1): EvseBelief(st, 1, HW) for st in ("CP1", "CP2")}
    if limit_cp1_a is not None:
        b = out[("CP1", 1)]
        profile = InstalledProfile(1001, 1, "TxProfile", 0, "A", (Period(0, limit_cp1_a),), transaction_id="10")
        b.transaction("10", T0)
        b.sent(1, profile)
    return out


def test_sessions_without_readings_are_planned_at_their_evse_maximum() -> None:
    state = _state()
    seen = draws("depot", state, _beliefs())
    assert seen == {}
    snap = build_snapshot(SITE, state, T0 + timedelta(minutes=5), SETTINGS, draws=seen)
    assert all(s.observed_a is None for s in snap.sessions)
    sch = optimize(snap)
    assert np.isclose(sch.power_w[:, 0].sum(), 22_080.0)  # the site in full, split over two 22 kW EVSEs


def test_a_car_drawing_less_than_its_limit_is_planned_near_what_it_takes() -> None:
    state = _state()
    at = T0 + timedelta(minutes=5)
    _reading(state, "CP1", "s0", (16.0, 16.0, 16.0), at)  # a 11 kW car on a 22 kW EVSE
    _reading(state, "CP2", "s1", (32.0, 32.0, 32.0), at)  # takes all it is given
    seen = draws("depot", state, _beliefs())
    assert seen["s0"].observed_a == 16.0 and seen["s0"].observed_phases == 3 and seen["s0"].allotted_a == 32.0
    snap = build_snapshot(SITE, state, at, SETTINGS, draws=seen)
    sch = optimize(snap)
    slow = (16.0 + DRAW_HEADROOM_A) * 230.0 * 3
    i = sch.session_ids.index("s0")
    assert np.all(sch.power_w[i] <= slow + 1e-6)
    assert np.isclose(sch.power_w[:, 0].sum(), 22_080.0)  # what the slow car leaves goes to the other


def test_readings_in_the_first_minute_or_under_an_unsettled_limit_teach_nothing() -> None:
    state = _state()
    _reading(state, "CP1", "s0", (3.0, 3.0, 3.0), T0 + timedelta(seconds=20))  # ramping up
    assert "s0" not in draws("depot", state, _beliefs())
    _reading(state, "CP1", "s0", (10.0, 10.0, 10.0), T0 + timedelta(minutes=5))
    assert "s0" not in draws("depot", state, _beliefs(limit_cp1_a=16.0))  # a profile still in flight
    assert draws("depot", state, _beliefs())["s0"].allotted_a == 32.0


def test_a_car_drawing_on_one_phase_is_planned_on_one_phase() -> None:
    state = _state()
    at = T0 + timedelta(minutes=5)
    _reading(state, "CP1", "s0", (16.0, 0.0, 0.0), at)
    seen = draws("depot", state, _beliefs())
    assert seen["s0"].observed_phases == 1
    sch = optimize(build_snapshot(SITE, state, at, SETTINGS, draws=seen))
    i = sch.session_ids.index("s0")
    assert len(sch.session_phases[i]) == 1
