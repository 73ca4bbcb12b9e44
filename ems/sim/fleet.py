"""A fleet of simulated stations with EVs arriving on their own: what ``ems simulate`` and ``ems demo`` run.

Each station runs ``run_station(station)`` (connection, charging, remote commands) plus a
driver loop: EVs arrive at random intervals, a driver presents one of ``cards``, and the
EV charges until it is full or its departure time passes. All randomness comes from one
seeded ``random.Random`` so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import websockets
from ocpp.exceptions import OCPPError

from ems.clock import Clock
from ems.domain.station import OcppVersion
from ems.sim.behaviour import run_station
from ems.sim.ev import Ev
from ems.sim.station import SimStation
from ems.tasks import cancel_and_wait, wait_any

log = logging.getLogger(__name__)


DEFAULT_CARDS = ("SIM-CARD-1", "SIM-CARD-2", "SIM-CARD-3")
"""Id tags the simulated drivers present; ``ems demo`` registers them as cards."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    url: str
    stations: int = 2
    version: OcppVersion = OcppVersion.V16
    password: str | None = None
    evses: int = 2
    prefix: str = "SIM"
    cards: tuple[str, ...] = DEFAULT_CARDS
    meter_interval_s: float = 60.0
    """Simulated seconds between meter values during a transaction."""
    mean_arrival_s: float = 600.0
    """Mean simulated time between EV arrivals at one station."""
    stay_s: tuple[float, float] = (20 * 60.0, 180 * 60.0)
    """How long a driver stays (simulated seconds), uniform between the two; the EV leaves then, or when full."""
    seed: int = 1
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)


@dataclass(slots=True)
class FleetReport:
    stations: int = 0
    connected: int = 0
    sessions_started: int = 0
    sessions_stopped: int = 0
    energy_wh: float = 0.0
    messages_sent: int = 0
    call_errors: int = 0


def build_stations(config: FleetConfig, clock: Clock) -> list[SimStation]:
    tag = "16" if config.version is OcppVersion.V16 else "201"
    return [
        SimStation(
            f"{config.prefix}-{tag}-{i:03d}",
            config.url,
            config.version,
            evses=config.evses,
            password=config.password,
            clock=clock,
            meter_interval_s=config.meter_interval_s,
            ssl_context=config.ssl_context,
        )
        for i in range(1, config.stations + 1)
    ]


async def drive(station: SimStation, config: FleetConfig, rng: random.Random, clock: Clock) -> None:
    """EVs arrive at ``station`` until cancelled."""
    while True:
        await clock.sleep(rng.expovariate(1.0 / config.mean_arrival_s))
        evse_id = station.pick_evse(None)
        if evse_id is None or not station.connected.is_set():
            continue
        ev = Ev(
            capacity_wh=rng.choice((40_000.0, 60_000.0, 80_000.0)),
            soc=rng.uniform(0.1, 0.7),
            max_power_w=rng.choice((7_400.0, 11_000.0, 22_000.0)),
            departure_at=clock.now() + timedelta(seconds=rng.uniform(*config.stay_s)),
        )
        with contextlib.suppress(
            PermissionError, OCPPError, ConnectionError, TimeoutError, websockets.ConnectionClosed
        ):
            await station.start(evse_id, rng.choice(config.cards), ev)


def report(stations: list[SimStation]) -> FleetReport:
    out = FleetReport(stations=len(stations))
    for s in stations:
        out.connected += s.connected.is_set()
        out.sessions_started += s.stats.started
        out.sessions_stopped += s.stats.stopped
        out.messages_sent += s.stats.sent
        out.call_errors += s.stats.call_errors
        out.energy_wh += sum(e.register_wh - 1_000_000.0 for e in s.evses.values())
    return out


async def run_fleet(config: FleetConfig, clock: Clock, *, duration_s: float | None = None) -> FleetReport:
    """Run the fleet for ``duration_s`` real seconds (``None``: until cancelled); returns what it did."""
    stations = build_stations(config, clock)
    rng = random.Random(config.seed)

    async def everything() -> None:
        async with asyncio.TaskGroup() as tg:
            for station in stations:
                tg.create_task(run_station(station))
                tg.create_task(drive(station, config, random.Random(rng.random()), clock))

    try:
        if duration_s is None:
            await everything()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration_s):
                    await everything()
    finally:
        for station in stations:
            with contextlib.suppress(OSError, TimeoutError, websockets.ConnectionClosed):
                await station.close()
    return report(stations)


class FleetComponent:
    """A fleet as a composition-root component (``ems demo``): starts once ``ready`` is set, runs until ``stop``.

    ``url`` is read when the fleet starts, so the OCPP server may have bound port 0.
    """

    def __init__(
        self, name: str, config: FleetConfig, clock: Clock, url: Callable[[], str], ready: asyncio.Event
    ) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        self._url = url
        self._ready = ready
        self.report: FleetReport | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await wait_any((), self._ready, stop)
        if stop.is_set():
            return
        fleet = asyncio.create_task(run_fleet(replace(self._config, url=self._url()), self._clock), name=self.name)
        await stop.wait()
        await cancel_and_wait(fleet)
