"""The control loop on a line-to-line site (a 208 V pod behind a delta-wye transformer), over real storage."""

import cmath
import math
from datetime import timedelta

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.controller.loop import Controller, ControllerSettings
from ems.controller.planning import PlanningSettings
from ems.domain.commands import CommandStatus
from ems.domain.events import SessionStarted
from ems.domain.session import ChargingSession
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, TransformerSpec
from ems.domain.station import Station
from ems.domain.units import Phase
from ems.ports.stores import Storage
from tests.integration.controller.test_loop import T0, RecordingControl

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
ANGLE = {L1: 0.0, L2: -120.0, L3: 120.0}
BRANCHES = {"A": (L1, L2), "B": (L1, L2), "C": (L3, L1)}
POD = Site(
    id="garage",
    circuits=(
        Circuit(
            "pod",
            phase_limits_a={L1: 50.0, L2: 50.0, L3: 50.0},
            transformer=TransformerSpec("delta-wye", 4.0, {L1: 100.0, L2: 100.0, L3: 100.0}),
        ),
    ),
    stations=tuple(
        StationSpec(
            sid, circuit_id="pod", evses=(EvseSpec(1, phases=1, phase_map=(a,), voltage_v=208.0, lines=(a, b)),)
        )
        for sid, (a, b) in BRANCHES.items()
    ),
)


def line_current(amps: dict[str, float], line: Phase) -> float:
    z = 0j
    for sid, a in amps.items():
        p, q = BRANCHES[sid]
        v = cmath.exp(1j * math.radians(ANGLE[p])) - cmath.exp(1j * math.radians(ANGLE[q]))
        z += (a * v / abs(v)) * (1 if p == line else -1 if q == line else 0)
    return abs(z)


async def test_a_line_to_line_pod_is_planned_within_its_exact_line_limits(storage: Storage) -> None:
    for n, sid in enumerate(BRANCHES):
        await storage.stations.add(Station(id=sid))
        await storage.sessions.add(
            ChargingSession(
                id=f"s{n}",
                station_id=sid,
                evse_id=1,
                connector_id=1,
                transaction_id=str(100 + n),
                started_at=T0,
                departure_at=T0 + timedelta(hours=3),
                energy_requested_wh=40_000.0,
            )
        )
    control = RecordingControl(CommandStatus.ACCEPTED)
    controller = Controller(
        sites=[POD],
        bus=EventBus(),
        clock=FakeClock(T0),
        sessions=storage.sessions,
        charger_control=control,
        settings=ControllerSettings(planning=PlanningSettings(horizon_slots=36), debounce_s=0),
    )
    for n, sid in enumerate(BRANCHES):
        await controller.handle(SessionStarted(at=T0, session_id=f"s{n}", station_id=sid, evse_id=1))
    await controller.replan("garage")  # the fail-safe defaults first
    record = await controller.replan("garage")
    assert record is not None and record.profiles_sent == 3 and record.profiles_rejected == 0
    first = {sid: cmd.periods[0].limit for sid, cmd in control.profiles().items()}
    assert set(first) == set(BRANCHES)
    for q in (L1, L2, L3):
        assert line_current(first, q) <= 50.0 + 0.01, f"{q}: {line_current(first, q):.1f} A"
    # L1 carries all three branches: their currents add to more than 50 A, their phasors to at most 50 A.
    assert sum(first.values()) > 50.0 + 1.0
    assert controller.state.site_load("garage").active_sessions == 3
