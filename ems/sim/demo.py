"""What ``ems demo`` simulates: a small car park whose chargers could draw twice what the grid allows.

The scenario lives here (site, fleets, grid-operator script, what is printed, the summary); the
composition root (``ems.app.demo``) only wires it to the running system.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ems.bus import EventBus
from ems.clock import Clock
from ems.domain.events import CapacityChanged
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.station import OcppVersion
from ems.domain.units import Phase
from ems.ports.grid import CapacitySignals
from ems.ports.stores import Storage
from ems.sim.demo_billing import billing_summary
from ems.sim.fleet import DEFAULT_CARDS, FleetConfig
from ems.sim.grid_operator import GridOperatorSim, MqttGridOperatorSim, ServiceSink, demo_script
from ems.tasks import wait_any

DEMO_PREFIX = "DEMO"
DEMO_STATIONS_PER_VERSION = 2
"""Simulated stations of each OCPP version by default (``ems demo --stations N`` for more)."""
DEMO_MAX_STATIONS_PER_VERSION = 500
DEMO_EVSES_PER_STATION = 2
DEMO_SPEED = 60.0
"""Simulated seconds per real second: a one-minute demo shows an hour of a car park."""
_TAGS = {OcppVersion.V16: "16", OcppVersion.V201: "201"}


def demo_fleets(per_version: int = DEMO_STATIONS_PER_VERSION) -> list[FleetConfig]:
    """``per_version`` stations of each OCPP version; EVs stay 10-40 simulated minutes, so a
    one-minute demo shows sessions start and stop. ``url`` is filled in once the OCPP server has
    bound its port."""
    return [
        FleetConfig(
            url="",
            stations=per_version,
            version=version,
            evses=DEMO_EVSES_PER_STATION,
            prefix=DEMO_PREFIX,
            meter_interval_s=60.0,
            mean_arrival_s=300.0,
            stay_s=(10 * 60.0, 40 * 60.0),
            seed=int(tag),
        )
        for version, tag in _TAGS.items()
    ]


def demo_site(per_version: int = DEMO_STATIONS_PER_VERSION) -> Site:
    """The fleets' stations with two 11 kW EVSEs each, on a connection of 10 kW per station (by
    default four stations: 88 kW of chargers on 40 kW), each version's stations on a feeder of
    12.5 kW per station."""
    evses = (
        EvseSpec(1, phases=3, max_current_a=16),
        EvseSpec(2, phases=3, phase_map=(Phase.L2, Phase.L3, Phase.L1), max_current_a=16),
    )
    stations = tuple(
        StationSpec(f"{DEMO_PREFIX}-{tag}-{i:03d}", circuit_id=f"feeder-{tag}", evses=evses)
        for tag in _TAGS.values()
        for i in range(1, per_version + 1)
    )
    stations_n = len(_TAGS) * per_version
    return Site(
        id="demo",
        name="Demo car park",
        timezone="Europe/Amsterdam",
        capacity_w=10_000 * stations_n,
        failsafe_capacity_w=5_500 * stations_n,
        stale_after_s=1800,
        circuits=tuple(Circuit(f"feeder-{tag}", capacity_w=12_500 * per_version) for tag in _TAGS.values()),
        stations=stations,
    )


def report(line: str) -> None:
    print(f"ems demo: {line}", flush=True)


def demo_grid_operator(
    site: Site,
    clock: Clock,
    signals: CapacitySignals,
    *,
    speed: float = 1.0,
    mqtt_url: str | None = None,
    mqtt_username: str | None = None,
    mqtt_password: str | None = None,
) -> GridOperatorSim | MqttGridOperatorSim:
    """``ems demo``'s grid operator: over the broker when ``mqtt_url`` is given, else in-process.

    ``speed``: clock seconds per real second, so the script lands at the same real moments.
    """
    script = demo_script(site, speed)
    if mqtt_url:
        return MqttGridOperatorSim(
            mqtt_url, site, clock, username=mqtt_username, password=mqtt_password, report=report, script=script
        )
    return GridOperatorSim(ServiceSink(signals), site, clock, script, report=report)


async def report_capacity_changes(bus: EventBus, stop: asyncio.Event) -> None:
    """Print every change of the site capacity in force (``ems demo``)."""
    changes = bus.subscribe(CapacityChanged, name="demo-capacity-report", maxsize=100)
    try:
        while not stop.is_set():
            getting = asyncio.ensure_future(changes.get())
            try:
                await wait_any([getting], stop)
            finally:
                if not getting.done():
                    getting.cancel()  # done at the next turn of the loop, not now
            if not getting.done() or getting.cancelled():
                break
            event = getting.result()
            if event.circuit_id is None:
                limit = "no limit" if event.capacity_w is None else f"{event.capacity_w / 1000:.1f} kW"
                source = event.source.value if event.source else "none"
                report(f"capacity of {event.site_id} now {limit} ({event.reason.value}, from {source})")
    finally:
        changes.close()


@dataclass(frozen=True, slots=True)
class DemoSummary:
    duration_s: float
    stations: int
    stations_connected: int
    """Stations that connected during the run (the simulated ones disconnect as the demo ends)."""
    sessions: int
    sessions_completed: int
    energy_wh: float
    samples: int
    api_url: str
    billing: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [
            f"demo ran {self.duration_s:.0f} s; API was at {self.api_url}",
            f"stations: {self.stations} registered, {self.stations_connected} connected during the run",
            f"sessions: {self.sessions} ({self.sessions_completed} completed), "
            f"energy delivered: {self.energy_wh / 1000:.2f} kWh, meter samples stored: {self.samples}",
            *self.billing,
        ]


async def summarize(storage: Storage, api_url: str, duration_s: float) -> DemoSummary:
    stations = await storage.stations.all()
    sessions = await storage.sessions.query(limit=100_000)
    samples = await storage.samples.count()
    return DemoSummary(
        duration_s=duration_s,
        stations=len(stations),
        stations_connected=sum(1 for s in stations if s.last_seen_at is not None),
        sessions=len(sessions),
        sessions_completed=sum(1 for s in sessions if s.stopped_at is not None),
        energy_wh=sum(s.energy_wh for s in sessions),
        samples=samples,
        api_url=api_url,
        billing=tuple(await billing_summary(storage, DEFAULT_CARDS)),
    )
