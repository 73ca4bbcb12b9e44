"""The control loop over real storage, with a recording ChargerControl standing in for the stations.

(The full path through the OCPP server and simulated stations is in tests/integration/ocpp.)
"""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.controller.loop import Controller
from ems.controller.planning import PlanningSettings
from ems.controller.settings import ControllerSettings
from ems.domain.capacity import CapacityChangeReason, CapacityInterval, LimitSource
from ems.domain.commands import CommandResult, CommandStatus, SetChargingLimit, StationCommand
from ems.domain.events import CapacityChanged, SessionStarted, StationBooted
from ems.domain.session import ChargingSession, SessionStatus
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.station import Station
from ems.domain.units import Phase
from ems.optimizer.estimates import Source
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
    assert await controller.replan("depot") is None, "first the fail-safe defaults: nothing accepted yet"
    assert len(control.profiles("TxDefaultProfile")) == 2 and not control.profiles()
    record = await controller.replan("depot")
    assert record is not None and record.profiles_sent == 2 and record.profiles_rejected == 0, "2 tx"
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
    await controller.replan("depot")  # the defaults
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
    control = RecordingControl()
    controller, _, clock = make(storage, control)
    await controller.handle(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
    await controller.replan("depot")  # the defaults, accepted
    control.answer = CommandStatus.REJECTED
    record = await controller.replan("depot")
    assert record is not None and record.profiles_rejected == 1 and record.profiles_sent == 0, "the TxProfile"
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
            while not (control.profiles() and len(control.profiles("TxDefaultProfile")) == 2):
                control.arrived.clear()
                await control.arrived.wait()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    defaults = control.profiles("TxDefaultProfile")
    assert defaults["CP2"].periods[0].limit == 24.0, "idle: 11 040 W shared by the site's two EVSEs, on 1 phase"
    assert defaults["CP1"].periods[0].limit == 0.0, "in a session: its default never adds to its TxProfile"
    assert control.profiles()["CP1"].transaction_id == "100"


async def test_a_stale_session_is_left_out_and_the_rest_planned(storage: Storage) -> None:
    """A station restarted mid-transaction: the old session never ended and overlaps the new one."""
    await seed(storage)
    await storage.sessions.add(
        ChargingSession(
            id="stale",
            station_id="CP1",
            evse_id=1,
            connector_id=1,
            transaction_id="99",
            started_at=T0 - timedelta(hours=2),
            departure_at=T0 + timedelta(hours=4),
        )
    )
    control = RecordingControl()
    controller, _, _ = make(storage, control)
    for sid, station in (("stale", "CP1"), ("s0", "CP1"), ("s1", "CP2")):
        await controller.handle(SessionStarted(at=T0, session_id=sid, station_id=station, evse_id=1))
    await controller.replan("depot")  # the defaults
    record = await controller.replan("depot")
    assert record is not None and set(record.schedule.session_ids) == {"s0", "s1"}
    view = controller.plan("depot")
    assert view is not None and view.status == record.schedule.status.value and view.error is None
    assert [line.split(":")[0] for line in view.left_out] == ["stale"], view.left_out
    assert view.attempted_at == T0
    tx = control.profiles()
    assert {c.transaction_id for c in tx.values()} == {"100", "101"}, "nothing is sent for the stale transaction"
    limits = {(e.station_id, e.evse_id): e for e in controller.evse_limits("depot")}
    assert limits[("CP1", 1)].certain and limits[("CP1", 1)].accepted_current_a == tx["CP1"].periods[0].limit


async def test_a_failed_attempt_is_what_the_plan_status_shows(storage: Storage) -> None:
    await seed(storage)
    control = RecordingControl()
    controller, _, clock = make(storage, control)
    await controller.handle(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
    await controller.replan("depot")  # the defaults
    assert await controller.replan("depot") is not None
    clock.advance(60)

    class Broken:
        def plan(self, snapshot: object) -> None:
            raise RuntimeError("solver crashed")

    controller._planners["depot"] = Broken()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        await controller.replan("depot")
    view = controller.plan("depot")
    assert view is not None and view.status == "ERROR" and view.error == "RuntimeError: solver crashed"
    assert view.attempted_at == T0 + timedelta(seconds=60) and view.planned_at == T0, "the plan in force is older"


async def test_a_capacity_drop_is_cut_at_once_even_while_a_round_holds_the_dispatch(storage: Storage) -> None:
    """The cuts do not wait for the plan loop: here a round under way (the dispatch lock held) would block them."""
    await seed(storage)
    control = RecordingControl()
    capacity = FixedCapacity(22_000)
    controller, bus, clock = make(storage, control, capacity)
    for n, station in enumerate(("CP1", "CP2")):
        await controller.handle(SessionStarted(at=T0, session_id=f"s{n}", station_id=station, evse_id=1))
    await controller.replan("depot")  # the defaults
    await controller.replan("depot")
    before = first_slot_w(control)
    assert before > 5_000
    stop = asyncio.Event()
    controller.subscribe()
    task = asyncio.create_task(controller.run(stop))
    try:
        async with controller._dispatch_lock:  # a round under way, waiting for answers
            await asyncio.sleep(0)  # the controller's task group is up
            control.sent.clear()
            capacity.capacity_w = 5_000
            clock.advance(15)
            await bus.publish(
                CapacityChanged(
                    at=clock.now(),
                    site_id="depot",
                    circuit_id=None,
                    capacity_w=5_000,
                    reason=CapacityChangeReason.IMMEDIATE_LIMIT,
                )
            )
            async with asyncio.timeout(10):
                while len(control.profiles()) < 2:
                    control.arrived.clear()
                    await control.arrived.wait()
            assert first_slot_w(control) <= 5_000, "both cut in proportion, before the round let go"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


class StuckControl(RecordingControl):
    """Accepts fail-safe defaults; never answers a TxProfile (a station that went silent)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        if isinstance(command, SetChargingLimit) and command.purpose == "TxProfile":
            self.sent.append((station_id, command))
            self.arrived.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return await super().execute(station_id, command)


async def test_shutdown_waits_briefly_for_sends_then_cancels_them(storage: Storage) -> None:
    await seed(storage)
    control = StuckControl()
    bus, clock = EventBus(), FakeClock(T0)
    settings = ControllerSettings(
        planning=PlanningSettings(horizon_slots=36), debounce_s=0, wave_wait_s=0.05, shutdown_grace_s=0.1
    )
    controller = Controller(
        sites=[SITE], bus=bus, clock=clock, sessions=storage.sessions, charger_control=control, settings=settings
    )
    await controller.handle(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
    await controller.replan("depot")  # the defaults
    await controller.replan("depot")  # the TxProfile: never answered
    assert controller.runner is not None and controller.runner.in_flight == 1
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert controller.runner.in_flight == 0 and control.cancelled == 1, "cancelled after the grace"
    belief = controller.dispatcher.beliefs[("CP1", 1)]
    assert not belief.in_flight and len(belief.worlds) == 2, "it may or may not have been applied"


async def test_history_is_read_at_start_and_estimates_sessions_that_say_nothing(storage: Storage) -> None:
    await storage.stations.add(Station(id="CP1"))
    for week in range(1, 5):  # card A on the last four Mondays: 6-9 h, 10-16 kWh
        start = T0 - timedelta(weeks=week)
        await storage.sessions.add(
            ChargingSession(
                id=f"past{week}",
                station_id="CP1",
                evse_id=1,
                connector_id=1,
                transaction_id=f"p{week}",
                started_at=start,
                stopped_at=start + timedelta(hours=5 + week),
                energy_wh=8_000.0 + 2_000 * week,
                id_tag="A",
                status=SessionStatus.COMPLETED,
            )
        )
    await storage.sessions.add(ChargingSession("now", "CP1", 1, 1, "200", T0, id_tag="A"))
    control = RecordingControl()
    bus, clock = EventBus(), FakeClock(T0)
    settings = ControllerSettings(planning=PlanningSettings(horizon_slots=36, history_refresh_s=3600), debounce_s=0)
    controller = Controller(
        sites=[SITE],
        bus=bus,
        clock=clock,
        sessions=storage.sessions,
        charger_control=control,
        settings=settings,
        history=storage.sessions,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(controller.run(stop))
    try:
        async with asyncio.timeout(5):
            await controller.replanned.wait()  # history read, then the re-plan it asks for
    finally:
        stop.set()
        await runner
    estimate = controller.histories["depot"].estimate("A", T0.weekday())
    assert estimate.source is Source.TOKEN_WEEKDAY and estimate.sessions == 4
    assert estimate.stay_s == 6.75 * 3600 and estimate.energy_wh == 13_000
    await controller.handle(SessionStarted(at=T0, session_id="now", station_id="CP1", evse_id=1, id_tag="A"))
    await controller.replan("depot")  # the fail-safe defaults first
    record = await controller.replan("depot")
    assert record is not None and record.schedule.session_ids == ("now",)
    # 13 kWh planned, not 80: what the schedule delivers is bounded by the estimate.
    assert 0 < record.schedule.session("now").energy_wh <= 13_000 + 1


async def test_history_unreadable_keeps_the_defaults(storage: Storage) -> None:
    class Broken:
        async def finished(
            self, *, since: datetime, id_tag: str | None = None, limit: int = 100_000
        ) -> list[ChargingSession]:
            raise RuntimeError("database gone")

    controller = Controller(
        sites=[SITE],
        bus=EventBus(),
        clock=FakeClock(T0),
        sessions=storage.sessions,
        charger_control=None,
        history=Broken(),
    )
    await controller.load_history()
    assert controller.histories == {}


async def test_a_site_whose_replans_fail_before_any_plan_is_unplanned_since_the_first_failure(
    storage: Storage,
) -> None:
    """/health reads ``unplanned_since``: set by the first failed re-plan while no plan is in force,
    kept (not moved) by the next failures, cleared by a plan."""
    await seed(storage)
    control = RecordingControl()
    controller, _, clock = make(storage, control)
    await controller.handle(SessionStarted(at=T0, session_id="s0", station_id="CP1", evse_id=1))
    await controller.replan("depot")  # the defaults
    assert controller.plans == {}
    working = controller._planners.get("depot")

    class Broken:
        def plan(self, snapshot: object) -> None:
            raise RuntimeError("solver crashed")

    controller._planners["depot"] = Broken()  # type: ignore[assignment]
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await controller.replan("depot")
        clock.advance(60)
    assert controller.unplanned_since == {"depot": T0}
    if working is None:
        del controller._planners["depot"]
    else:
        controller._planners["depot"] = working
    assert await controller.replan("depot") is not None
    assert controller.unplanned_since == {}
