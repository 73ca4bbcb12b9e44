"""What the console needs from the rest of ems: ports and services, handed in by ``ems.app``."""

from __future__ import annotations

from dataclasses import dataclass

from ems.clock import Clock
from ems.domain.site import Site
from ems.ports.control import ChargerControl
from ems.ports.grid import CapacitySignals
from ems.ports.monitor import SiteMonitor
from ems.ports.stores import Storage
from ems.services.billing_setup import Billing
from ems.throttle import ThrottleSettings


@dataclass(slots=True)
class ConsoleDeps:
    storage: Storage
    clock: Clock
    sites: tuple[Site, ...]
    billing: Billing
    charger_control: ChargerControl | None = None
    """``None``: no OCPP server in this process; commands answer OFFLINE."""
    monitor: SiteMonitor | None = None
    capacity: CapacitySignals | None = None
    admin_api_key: str | None = None
    throttle: ThrottleSettings | None = None

    def site(self, site_id: str | None) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def site_of_station(self, station_id: str, placed: str | None = None) -> Site:
        """The station's site (its placement, else the site file's, else the first site)."""
        return (
            self.site(placed)
            or next((s for s in self.sites if s.station(station_id) is not None), None)
            or self.sites[0]
        )
