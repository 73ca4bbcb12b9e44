"""What ``ems demo`` simulates: a small car park whose chargers could draw twice what the grid allows."""

from __future__ import annotations

from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.units import Phase
from ems.sim.fleet import DEFAULT_CARDS

DEMO_STATIONS_PER_VERSION = 2
DEMO_EVSES_PER_STATION = 2
DEMO_CARDS = DEFAULT_CARDS
DEMO_SPEED = 60.0
"""Simulated seconds per real second: a one-minute demo shows an hour of a car park."""


def demo_site() -> Site:
    """Four stations (two per OCPP version) with two 11 kW EVSEs each: 88 kW of chargers on a 40 kW connection."""
    evses = (
        EvseSpec(1, phases=3, max_current_a=16),
        EvseSpec(2, phases=3, phase_map=(Phase.L2, Phase.L3, Phase.L1), max_current_a=16),
    )
    stations = tuple(
        StationSpec(f"SIM-{tag}-{i:03d}", circuit_id=f"feeder-{tag}", evses=evses)
        for tag in ("16", "201")
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
