"""The closed loop end to end, on real parts: OCPP server, controller, optimizer, capacity
service, storage, and simulated 1.6 and 2.0.1 stations that apply exactly the composite of
what they accepted (all periods, stack levels, defaults).

One site, five EVSEs: a 1.6 station, a 2.0.1 station and a 1.6 station that refuses every
charging profile. Through a grid signal, a reconnect, a reboot, a refused profile and a
stale session, the sum of what the stations will apply — now and at every later period
boundary of what they hold — never exceeds the capacity in force once the first plan is in.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.app import Runtime, System, build_system
from ems.bus import EventBus
from ems.clock import FakeClock
from ems.config import Settings
from ems.controller.loop import Controller
from ems.domain import composite
from ems.domain.capacity import SignalKind, SignalSource
from ems.domain.card import Card
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.domain.station import OcppVersion
from ems.ports.stores import Storage
from ems.sim.ev import Ev
from ems.sim.profiles import effective_limit_w
from ems.sim.station import SimStation
from ems.supervisor import run_components

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
EVSE = EvseSpec(1, phases=3, max_current_a=32)
SITE = Site(
    id="yard",
    capacity_w=66_000,
    failsafe_capacity_w=10_000,  # 2 kW per EVSE: below 6 A, so idle EVSEs pause (0 A)
    stations=(
        StationSpec("Y-16", evses=(EVSE, EvseSpec(2, phases=3, max_current_a=32))),
        StationSpec("Y-201", evses=(EVSE, EvseSpec(2, phases=3, max_current_a=32))),
        StationSpec("Y-OLD", evses=(EVSE,)),
    ),
)
MAX_W = 32 * 230 * 3
TOLERANCE_W = 1.0


@dataclass
class Loop:
    system: System
    clock: FakeClock
    stations: dict[str, SimStation]
    capacity_w: float
    armed: bool = False
    """The invariant holds once the first plan is in force (before it, stations hold nothing yet)."""

    @property
    def controller(self) -> Controller:
        return self.system.controller

    def applied_w(self, at: datetime) -> float:
        """What the stations will apply at ``at``, by what each holds (no profile: the EVSE's maximum)."""
        total = 0.0
        for s in self.stations.values():
            for evse in s.evses.values():
                tx = evse.tx
                limit = effective_limit_w(
                    s.profiles,
                    evse_id=evse.id,
                    now=at,
                    tx_id=None if tx is None else tx.id,
                    tx_started_at=None if tx is None else tx.started_at,
                )
                total += MAX_W if limit is None else min(limit, MAX_W)
        return total

    def holding(self, at: datetime) -> str:
        out = []
        for s in self.stations.values():
            for evse in s.evses.values():
                held = [
                    (p.id, p.purpose, p.transaction_id, p.start_at, p.duration_s, [x.limit for x in p.periods])
                    for p in s.profiles
                    if p.evse_id in (0, evse.id)
                ]
                out.append(f"{s.id}/{evse.id} tx={evse.tx.id if evse.tx else None} {held}")
        return "; ".join(out)

    def check_invariant(self) -> None:
        """Now and at every period boundary of every profile held, for the next 20 minutes."""
        if not self.armed:
            return
        now = self.clock.now()
        points = {now}
        for s in self.stations.values():
            points |= composite.breakpoints(s.profiles, now, now, now + timedelta(minutes=20))
        for t in sorted(points):
            applied = self.applied_w(t)
            assert applied <= self.capacity_w + TOLERANCE_W, (
                f"{applied:.0f} W > {self.capacity_w:.0f} W at {t} (now {now}): {self.holding(t)}"
            )

    def describe(self) -> str:
        return (
            "; ".join(f"{s.id}/{e}: {s.limit_w(e)}" for s in self.stations.values() for e in s.evses)
            + f"; plan {self.controller.plan('yard')}"
        )

    async def until(
        self, condition: Callable[[], bool], what: str, within_s: float = 30, explain: Callable[[], str] | None = None
    ) -> None:
        try:
            async with asyncio.timeout(within_s):
                while not condition():
                    self.check_invariant()
                    self.clock.advance(0.5)  # time passes (10x): raises wait their minimum interval
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"not within {within_s} s: {what} ({explain() if explain else ''})") from None
        self.check_invariant()


@pytest.fixture
async def loop(storage: Storage, tmp_path: Path) -> AsyncIterator[Loop]:
    clock = FakeClock(T0)
    settings = Settings(  # type: ignore[call-arg]
        api_port=0,
        ocpp_port=0,
        ocpp_auto_register=True,
        ocpp_require_password=False,  # the simulated stations register themselves, without passwords
        data_dir=tmp_path,
        _env_file=None,
    )
    runtime = Runtime(settings=settings, sites=(SITE,), clock=clock, bus=EventBus(), storage=storage)
    await storage.cards.add(Card(uid="DRIVER"))
    system = await build_system(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(run_components(system.components(), stop))
    try:
        await asyncio.wait_for(system.ocpp.started.wait(), 10)
        stations = {
            "Y-16": SimStation("Y-16", system.ocpp.url, OcppVersion.V16, evses=2, clock=clock),
            "Y-201": SimStation("Y-201", system.ocpp.url, OcppVersion.V201, evses=2, clock=clock),
            "Y-OLD": SimStation("Y-OLD", system.ocpp.url, OcppVersion.V16, evses=1, clock=clock),
        }
        stations["Y-OLD"].refuse_profiles = {"TxProfile", "TxDefaultProfile", "ChargePointMaxProfile"}
        for s in stations.values():
            await s.connect()
            await s.boot()
        yield Loop(system, clock, stations, SITE.capacity_w or 0.0)
        for s in stations.values():
            await s.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def car() -> Ev:
    return Ev(capacity_wh=80_000, soc=0.2, max_power_w=22_000)


def tx_limited(s: SimStation, evse_id: int) -> bool:
    tx = s.evses[evse_id].tx
    return (
        tx is not None
        and tx.id is not None
        and any(p.purpose == composite.TX and p.transaction_id == tx.id and p.evse_id == evse_id for p in s.profiles)
    )


@pytest.mark.slow
async def test_the_site_never_goes_over_its_limit(loop: Loop) -> None:
    st = loop.stations
    for s in st.values():
        for evse_id in s.evses:
            await s.start(evse_id, "DRIVER", car())

    # 1. First plan in force. The refusing station draws up to its maximum: the others make room.
    await loop.until(
        lambda: all(tx_limited(st[n], e) for n in ("Y-16", "Y-201") for e in (1, 2)), "TxProfiles installed"
    )
    loop.armed = True
    loop.check_invariant()
    caps = loop.controller.capabilities
    await loop.until(lambda: not caps["Y-OLD"].takes_profiles(), "the refusing station is known as one")
    await loop.until(
        lambda: loop.applied_w(loop.clock.now()) >= 0.9 * loop.capacity_w,
        "the capacity is used",
        explain=lambda: f"{loop.applied_w(loop.clock.now()):.0f} W applied; {loop.describe()}",
    )
    assert st["Y-OLD"].profiles == [], "it refused everything"
    assert caps["Y-16"].learned and caps["Y-201"].learned and caps["Y-16"].max_periods == 24

    # 2. The grid operator halves the capacity.
    loop.clock.advance(15)
    outcome = await loop.system.capacity.submit(
        {
            "message_id": "dso-1",
            "forecasted_blocks": [
                {"capacity": 40, "unit": "KW", "phase": "ALL", "start_time": loop.clock.now().isoformat()}
            ],
        },
        site_id="yard",
        source=SignalSource.API,
        kind=SignalKind.LIMIT,
    )
    assert outcome.accepted, outcome.problems
    await loop.until(lambda: loop.applied_w(loop.clock.now()) <= 40_000 + TOLERANCE_W, "the new limit obeyed")
    loop.capacity_w = 40_000
    loop.check_invariant()

    # 3. A reconnect: everything is installed again.
    accepted = loop.controller.stats().accepted
    await st["Y-201"].disconnect()
    st["Y-201"].go_online()
    await st["Y-201"].connect()
    await st["Y-201"].boot()
    await loop.until(lambda: loop.controller.stats().accepted >= accepted + 4, "re-installed after the reconnect")

    # 4. A reboot of the 1.6 station: its transactions end, its TxProfiles go; a new car comes.
    s16 = st["Y-16"]
    await s16.disconnect()
    for evse_id in (1, 2):
        await s16.stop(evse_id, "HardReset")
    s16.go_online()
    await s16.connect()
    await s16.boot()
    await s16.start(1, "DRIVER", car())
    await loop.until(lambda: tx_limited(s16, 1), "the new transaction after the reboot gets its TxProfile")

    # 5. A stale session: the 2.0.1 station forgets its transaction on EVSE 2 (no end sent) and starts another.
    s201 = st["Y-201"]
    s201.evses[2].tx = None
    await s201.start(2, "DRIVER", car())
    await loop.until(lambda: tx_limited(s201, 2), "the new session on the same EVSE is planned")
    view = loop.controller.plan("yard")
    assert view is not None and view.status != "ERROR", view

    # Period boundaries: the stations follow the later periods of what they hold.
    for _ in range(3):
        loop.clock.advance(300)
        loop.check_invariant()
