"""The demo's scenario at its default size and scaled (``ems demo --stations N``)."""

from __future__ import annotations

import pytest

from ems.domain.station import OcppVersion
from ems.sim.demo import demo_fleets, demo_site


def test_default_demo_is_four_stations_on_forty_kilowatts() -> None:
    site = demo_site()
    assert len(site.stations) == 4 and site.capacity_w == 40_000 and site.failsafe_capacity_w == 22_000
    assert [c.capacity_w for c in site.circuits] == [25_000, 25_000]
    assert [f.stations for f in demo_fleets()] == [2, 2]


@pytest.mark.parametrize("per_version", [1, 7, 50])
def test_scaled_demo_keeps_the_per_station_sizing(per_version: int) -> None:
    site = demo_site(per_version)
    fleets = demo_fleets(per_version)
    stations = 2 * per_version
    assert len(site.stations) == stations and len({s.id for s in site.stations}) == stations
    assert site.capacity_w == 10_000 * stations and site.failsafe_capacity_w == 5_500 * stations
    assert sorted(c.capacity_w or 0 for c in site.circuits) == [12_500 * per_version] * 2
    assert {f.version for f in fleets} == {OcppVersion.V16, OcppVersion.V201}
    assert all(f.stations == per_version for f in fleets)
    # every station a fleet runs is on the site (the fleets name them as the site does)
    circuits = {c.id for c in site.circuits}
    assert all(s.circuit_id in circuits for s in site.stations)
