"""The control loop over real storage, with a recording ChargerControl standing in for the stations.

(The full path through the OCPP server and simulated stations is in tests/integration/ocpp.)
"""

import asyncio
from datetime import UTC, datetime, timedelta

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.controller.loop import Controller, ControllerSettings
from ems.controller.planning import PlanningSettings
from ems.domain.capacity import CapacityInterval, LimitSource
from ems.domain.commands import CommandResult, CommandStatus, SetChargingLimit, StationCommand
from ems.domain.events import SessionStarted, StationBooted
from ems.domain.session import ChargingSession
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.station import Station
from ems.domain.units import Phase
from ems.ports.stores import Storage

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SITE = Site(
    id="depot",
    capacity_w=22_000,
    failsafe_capacity_w=11_040,
    circuits=(Circuit("feeder", capacity_w=15_000),),
    stations=(
        StationSpec("CP1", circuit_id="feeder", evses=(EvseSpec(1, phases=3),)),
        StationSpec("CP2", circuit_id="feeder", evses=(EvseSpec(1, phases=1, phase_map=(Phase.L2,)),)),
    ),
)


class RecordingControl:
    def __init__(self, answer: CommandStatus = CommandStatus.ACCEPTED) -> None:
        self.answer = answer
        self.sent: list[tuple[str, StationCommand]] = []
        self.arrived = asyncio.Event()

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        self.sent.append((station_id, command))
        self.arrived.set()
        return CommandResult(self.answer)

    def is_online(self, station_id: str) -> bool:
        return True

    def profiles(self, purpose: str = "TxProfile") -> dict[str, SetChargingLimit]:
        return {s: c for s, c in self.sent if isinstance(c, SetChargingLimit) and c.purpose == purpose}


class FixedCapacity:
    def __init__(self, capacity_w: float) -> None:
        self.capacity_w = capacity_w

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]:
        if circuit_id is not None:
            return []
        return [
            CapacityInterval(
                start=T0, end=T0 + timedelta(days=1), capacity_w=self.capacity_w, capacity_source=LimitSource.LIMIT
            )
        ]


async def seed(storage: Storage) -> None:
    for n, station in enumerate(("CP1", "CP2")):
        await storage.stations.add(Station(id=station))
        await storage.sessions.add(
            ChargingSession(
                id=f"s{n}",
                station_id=station,
                evse_id=1,
                connector_id=1,
                transaction_id=str(100 + n),
                started_at=T0,
                departure_at=T0 + timedelta(hours=3),
                energy_requested_wh=20_000.0,
            )
        )


def make(
    storage: Storage, control: RecordingControl, capacity: FixedCapacity | None = None, clock: FakeClock | None = None
) -> tuple[Controller, EventBus, FakeClock]:
    bus, clock = EventBus(), clock or FakeClock(T0)
    settings = ControllerSettings(planning=PlanningSettings(horizon_slots=36), debounce_s=0)
    controller = Controller(
        sites=[SITE],
        bus=bus,
        clock=clock,
        sessions=storage.sessions,
        charger_control=control,
        capacity=capacity,
        settings=settings,
    )
    return controller, bus, clock


def first_slot_w(control: RecordingControl) -> float:
    phases = {"CP1": 3, "CP2": 1}
    return sum(cmd.periods[0].limit * 230 * phases[s] for s, cmd in control.profiles().items())


async def test_sessions_get_profiles_within_the_tree(storage: Storage) -> None:
    await seed(storage)
    control = RecordingControl()
    controller, _, _ = make(storage, control)
    for n, station in enumerate(("CP1", "CP2")):
        await controller.handle(SessionStarted(at=T0, session_id=f"s{n}", station_id=station, evse_id=1))
    record = await controller.replan("depot")
    assert record is not None and record.profiles_sent == 2 and record.profiles_rejected == 0
    profiles = control.profiles()
    assert set(profiles) == {"CP1", "CP2"}
    assert profiles["CP1"].transaction_id == "100" and profiles["CP2"].transaction_id == "101"
    assert 0 < first_slot_w(control) <= 15_000, "the feeder's 15 kW holds"
    assert controller.latest_plan("depot") is record


async def test_a_capacity_drop_lowers_the_limits(storage: Storage) -> None:
    await seed(storage)
    control = RecordingControl()
    capacity = FixedCapacity(22_000)
    controller, _, clock = make(storage, control, capacity)
    for n, station in enumerate(("CP1", "CP2")):
        await controller.handle(SessionStarted(at=T0, session_id=f"s{n}", station_id=station, evse_id=1))
    await controller.replan("depot")
    before = first_slot_w(control)
    capacity.capacity_w = 5_000
    clock.advance(15)
    control.sent.clear()
    await controller.replan("depot")
    after = first_slot_w(control)
    assert after <= 5_000 < before


async def test_refused_profiles_are_counted_and_retried(storage: Storage) -> None:
    await seed(storage)
    control = RecordingControl(CommandStatus.REJECTED)
    controller, _, clock = make(storage, control)
    await controller.handle(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
    record = await controller.replan("depot")
    assert record is not None and record.profiles_rejected == 1 and record.profiles_sent == 0
    control.answer = CommandStatus.ACCEPTED
    control.sent.clear()
    clock.advance(1)
    record = await controller.replan("depot")
    assert record is not None and record.profiles_sent == 1, "nothing was in force, so it is sent again"


async def test_running_loop_reacts_to_events_and_installs_failsafe(storage: Storage) -> None:
    await seed(storage)
    control = RecordingControl()
    controller, bus, _ = make(storage, control)
    stop = asyncio.Event()
    controller.subscribe()
    task = asyncio.create_task(controller.run(stop))
    try:
        await bus.publish(StationBooted(at=T0, station_id="CP1"))
        await bus.publish(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
        async with asyncio.timeout(10):
            while not (control.profiles() and control.profiles("TxDefaultProfile")):
                control.arrived.clear()
                await control.arrived.wait()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    failsafe = control.profiles("TxDefaultProfile")["CP1"]
    assert failsafe.periods[0].limit == 8.0, "11 040 W shared by the site's two EVSEs, over 3 phases"
    assert control.profiles()["CP1"].transaction_id == "100"
