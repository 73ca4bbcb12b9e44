from datetime import UTC, datetime, timedelta

import pytest

from ems.controller.state import LiveState
from ems.domain.events import MeterSampled, SessionEnded, SessionStarted, StationConnected, StatusChanged
from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.domain.station import ConnectorStatus, OcppVersion
from ems.domain.units import Phase

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SITE = Site(
    id="depot",
    stations=(
        StationSpec("CP1", evses=(EvseSpec(1, phases=1, phase_map=(Phase.L3,)),)),
        StationSpec("CP2", evses=(EvseSpec(1, phases=3, phase_map=(Phase.L2, Phase.L3, Phase.L1)),)),
    ),
)


def sample(
    station: str,
    session: str,
    measurand: Measurand,
    value: float,
    phase: str | None = None,
    at: datetime = T0,
    flag: str | None = None,
) -> MeterSample:
    return MeterSample(
        station_id=station,
        evse_id=1,
        measured_at=at,
        measurand=measurand,
        value=value,
        session_id=session,
        phase=phase,
        flag=flag,
    )


def started(state: LiveState, station: str, session: str) -> None:
    assert state.apply(SessionStarted(at=T0, session_id=session, station_id=station, evse_id=1, id_tag="T"))


def test_single_phase_power_lands_on_its_wired_phase() -> None:
    state = LiveState([SITE])
    started(state, "CP1", "s1")
    state.apply(
        MeterSampled(
            at=T0,
            station_id="CP1",
            evse_id=1,
            samples=(
                sample("CP1", "s1", Measurand.POWER_IMPORT, 7000.0),
                sample("CP1", "s1", Measurand.ENERGY_IMPORT_REGISTER, 1000.0),
            ),
        )
    )
    load = state.site_load("depot")
    assert load.phase_power_w == {Phase.L3: 7000.0, Phase.L1: 0.0, Phase.L2: 0.0}
    assert load.active_sessions == 1 and load.measured_at == T0


def test_per_phase_readings_follow_the_phase_rotation() -> None:
    state = LiveState([SITE])
    started(state, "CP2", "s2")
    state.apply(
        MeterSampled(
            at=T0,
            station_id="CP2",
            evse_id=1,
            samples=(
                sample("CP2", "s2", Measurand.CURRENT_IMPORT, 10.0, "L1"),
                sample("CP2", "s2", Measurand.CURRENT_IMPORT, 20.0, "L2-N"),
                sample("CP2", "s2", Measurand.CURRENT_IMPORT, 30.0, "L3"),
            ),
        )
    )
    load = state.site_load("depot")
    assert load.phase_power_w[Phase.L2] == pytest.approx(2300.0)  # EVSE L1 is wired to grid L2
    assert load.phase_power_w[Phase.L3] == pytest.approx(4600.0)
    assert load.phase_power_w[Phase.L1] == pytest.approx(6900.0)


def test_delivered_energy_from_the_register_ignoring_flagged_and_late_readings() -> None:
    state = LiveState([SITE])
    started(state, "CP1", "s1")
    state.update_session(
        ChargingSession(
            id="s1",
            station_id="CP1",
            evse_id=1,
            connector_id=1,
            transaction_id="7",
            started_at=T0,
            meter_start_wh=50_000.0,
        )
    )
    later = T0 + timedelta(minutes=10)
    state.apply(
        MeterSampled(
            at=later,
            station_id="CP1",
            evse_id=1,
            samples=(sample("CP1", "s1", Measurand.ENERGY_IMPORT_REGISTER, 51_200.0, at=later),),
        )
    )
    state.apply(
        MeterSampled(
            at=later,
            station_id="CP1",
            evse_id=1,
            samples=(sample("CP1", "s1", Measurand.ENERGY_IMPORT_REGISTER, 10.0, at=later, flag="register_backwards"),),
        )
    )
    state.apply(
        MeterSampled(
            at=T0,
            station_id="CP1",
            evse_id=1,
            samples=(sample("CP1", "s1", Measurand.ENERGY_IMPORT_REGISTER, 50_500.0, at=T0),),
        )
    )
    assert state.sessions["s1"].delivered_wh == pytest.approx(1200.0)
    assert state.sessions["s1"].transaction_id == "7"


def test_unknown_stations_join_the_first_site_with_a_default_evse() -> None:
    state = LiveState([SITE])
    assert state.site_of("NEW").id == "depot"
    assert state.evse_spec("NEW", 2).max_current_a == 32.0
    assert state.evse_spec("CP1", 1).phase_map == (Phase.L3,)


def test_planning_relevance_of_events() -> None:
    state = LiveState([SITE])
    assert state.apply(StationConnected(at=T0, station_id="CP1", ocpp_version=OcppVersion.V16))
    status = StatusChanged(at=T0, station_id="CP1", evse_id=1, connector_id=1, status=ConnectorStatus.CHARGING)
    assert state.apply(status)
    assert not state.apply(status), "the same status again changes nothing"
    started(state, "CP1", "s1")
    assert state.apply(SessionEnded(at=T0, session_id="s1", station_id="CP1", evse_id=1, energy_wh=1.0))
    assert not state.apply(SessionEnded(at=T0, session_id="s1", station_id="CP1", evse_id=1, energy_wh=1.0))
    assert state.site_load("depot").active_sessions == 0
