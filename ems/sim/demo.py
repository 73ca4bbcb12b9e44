"""What ``ems demo`` simulates: a small car park whose chargers could draw twice what the grid allows."""

from __future__ import annotations

from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.station import OcppVersion
from ems.domain.units import Phase
from ems.sim.fleet import FleetConfig

DEMO_PREFIX = "DEMO"
DEMO_STATIONS_PER_VERSION = 2
DEMO_EVSES_PER_STATION = 2
DEMO_SPEED = 60.0
"""Simulated seconds per real second: a one-minute demo shows an hour of a car park."""
_TAGS = {OcppVersion.V16: "16", OcppVersion.V201: "201"}


def demo_fleets() -> list[FleetConfig]:
    """Two stations of each OCPP version; EVs stay 10-40 simulated minutes, so a one-minute demo
    shows sessions start and stop. ``url`` is filled in once the OCPP server has bound its port."""
    return [
        FleetConfig(
            url="",
            stations=DEMO_STATIONS_PER_VERSION,
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


def demo_site() -> Site:
    """The fleets' four stations with two 11 kW EVSEs each: 88 kW of chargers on a 40 kW connection."""
    evses = (
        EvseSpec(1, phases=3, max_current_a=16),
        EvseSpec(2, phases=3, phase_map=(Phase.L2, Phase.L3, Phase.L1), max_current_a=16),
    )
    stations = tuple(
        StationSpec(f"{DEMO_PREFIX}-{tag}-{i:03d}", circuit_id=f"feeder-{tag}", evses=evses)
        for tag in _TAGS.values()
        for i in range(1, DEMO_STATIONS_PER_VERSION + 1)
    )
    return Site(
        id="demo",
        name="Demo car park",
        timezone="Europe/Amsterdam",
        capacity_w=40_000,
        failsafe_capacity_w=22_000,
        stale_after_s=1800,
        circuits=(Circuit("feeder-16", capacity_w=25_000), Circuit("feeder-201", capacity_w=25_000)),
        stations=stations,
    )
