"""Carrying out rounds: the send window, raises weighed against superseded limits, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from ems.clock import FakeClock
from ems.controller.budget import SITE, EvsePlace, Limits, NodeLimits
from ems.controller.dispatch import Desired, Dispatcher, DispatchSettings
from ems.controller.sending import RoundRunner
from ems.domain.commands import (
    ChargingSchedulePeriod,
    CommandResult,
    CommandStatus,
    SetChargingLimit,
    StationCommand,
)
from ems.domain.composite import Hardware
from ems.domain.units import ALL_PHASES

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
HW = Hardware(32.0, 3)
PLACE = EvsePlace(None, ALL_PHASES, 230.0)


def default(amps: float) -> SetChargingLimit:
    return SetChargingLimit(
        evse_id=1,
        profile_id=901,
        purpose="TxDefaultProfile",
        rate_unit="A",
        periods=(ChargingSchedulePeriod(start_offset_s=0, limit=amps, number_phases=3),),
    )


class HeldControl:
    """Answers ACCEPTED when the test releases a station's send; records the order sends start in."""

    def __init__(self, held: set[str] | None = None) -> None:
        self.held = held  # None: every station waits for its release
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.outstanding = 0
        self.most_outstanding = 0
        self.cancelled: list[str] = []
        self.changed = asyncio.Event()

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        self.started.append(station_id)
        self.changed.set()
        if self.held is not None and station_id not in self.held:
            return CommandResult(CommandStatus.ACCEPTED)
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        try:
            await self.release.setdefault(station_id, asyncio.Event()).wait()
        except asyncio.CancelledError:
            self.cancelled.append(station_id)
            raise
        finally:
            self.outstanding -= 1
        return CommandResult(CommandStatus.ACCEPTED)

    def is_online(self, station_id: str) -> bool:
        return True


def runner(control: HeldControl, stations: list[str], **kw: float) -> RoundRunner:
    d = Dispatcher(DispatchSettings(min_interval_s=0.0))
    for s in stations:
        d.belief(s, 1, HW)
    return RoundRunner(
        dispatcher=d,
        control=control,
        clock=FakeClock(T0),
        still_running=lambda _: True,
        **kw,  # type: ignore[arg-type]
    )


def limits(capacity_w: float) -> Limits:
    return Limits(T0, 300, (NodeLimits(SITE, None, (capacity_w,) * 12, {}),))


async def until(control: HeldControl, predicate: Callable[[], bool], within_s: float = 2.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():
            control.changed.clear()
            await control.changed.wait()


async def test_cuts_go_out_in_their_order_through_a_bounded_window() -> None:
    stations = [f"S{i}" for i in range(6)]
    control = HeldControl()
    r = runner(control, stations, max_in_flight=2, release_s=10.0)
    places = {(s, 1): PLACE for s in stations}
    task = asyncio.create_task(r.run([Desired(s, default(0.0)) for s in stations], limits(1e9), places))
    await until(control, lambda: len(control.started) == 2)
    await asyncio.sleep(0.05)
    assert control.started == ["S0", "S1"], "two out, the rest wait for an answer"
    for s in stations:
        control.release.setdefault(s, asyncio.Event()).set()
    outcome = await task
    assert outcome.sent == 6 and control.most_outstanding == 2
    assert control.started == stations, "in the order given"


async def test_a_station_that_does_not_answer_does_not_hold_the_others_back() -> None:
    stations = ["SLOW", "A", "B", "C"]
    control = HeldControl(held={"SLOW"})
    r = runner(control, stations, max_in_flight=1, release_s=0.05, wave_wait_s=0.5)
    places = {(s, 1): PLACE for s in stations}
    outcome = await r.run([Desired(s, default(0.0)) for s in stations], limits(1e9), places)
    assert control.started == stations and outcome.sent == 3, "the others went out after release_s"
    assert r.in_flight == 1, "the slow one is still out, counted at either limit"
    assert not r.dispatcher.beliefs[("SLOW", 1)].certain()


async def test_close_waits_for_answers_then_cancels_what_is_still_out() -> None:
    control = HeldControl(held={"SLOW"})
    r = runner(control, ["SLOW", "A"], wave_wait_s=0.05)
    places = {(s, 1): PLACE for s in ("SLOW", "A")}
    await r.run([Desired(s, default(0.0)) for s in ("SLOW", "A")], limits(1e9), places)
    assert r.in_flight == 1
    await r.close(grace_s=0.05)
    assert r.in_flight == 0 and control.cancelled == ["SLOW"]
    belief = r.dispatcher.beliefs[("SLOW", 1)]
    assert not belief.in_flight and len(belief.worlds) == 2, "cancelled: applied or not, both stay possible"
    outcome = await r.run([Desired("A", default(6.0))], limits(1e9), places)
    assert outcome.sent == 0 and control.started == ["SLOW", "A"], "closed: nothing more goes out"


async def test_a_raise_weighed_against_limits_that_changed_is_not_sent() -> None:
    control = HeldControl(held={"CUT"})
    r = runner(control, ["CUT", "UP"], max_in_flight=1, release_s=10.0)
    d = r.dispatcher
    places = {(s, 1): PLACE for s in ("CUT", "UP")}
    # Both hold a 16 A default; CUT goes down to 0 A, UP up to 32 A (fits with CUT still counted at 16 A).
    control.release["CUT"] = asyncio.Event()
    control.release["CUT"].set()
    await r.run([Desired(s, default(16.0)) for s in ("CUT", "UP")], limits(1e9), places)
    control.release["CUT"] = asyncio.Event()
    control.started.clear()
    current = {"limits": limits(60_000.0)}
    task = asyncio.create_task(
        r.run([Desired("CUT", default(0.0)), Desired("UP", default(32.0))], lambda: current["limits"], places)
    )
    await until(control, lambda: control.started == ["CUT"])
    current["limits"] = limits(20_000.0)  # the capacity fell while the cut was out
    control.release["CUT"].set()
    outcome = await task
    assert control.started.count("UP") == 0, "the raise was weighed against the old capacity: not sent"
    assert outcome.held >= 1
    bound = d.beliefs[("UP", 1)].bound(T0)
    assert bound.at(T0)[0] == 16.0, "UP stays at what it had"
