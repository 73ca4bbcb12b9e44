"""What the API needs from the rest of ems: ports only, handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from ems.bus import EventBus
from ems.clock import Clock
from ems.domain.site import Site
from ems.health import HealthChecks
from ems.metrics import Collector
from ems.ports.analytics import AnalyticsQueries
from ems.ports.control import ChargerControl
from ems.ports.grid import CapacitySignals
from ems.ports.monitor import SiteMonitor
from ems.ports.stores import Storage
from ems.services.billing_setup import Billing


@dataclass(slots=True)
class ApiServices:
    storage: Storage
    clock: Clock
    sites: tuple[Site, ...]
    billing: Billing
    """Built once by the composition root (``ems.app``), shared with the OCPP event path."""
    bus: EventBus = field(default_factory=EventBus)
    charger_control: ChargerControl | None = None
    """``None`` when the OCPP server is not running in this process: commands answer 503."""
    monitor: SiteMonitor | None = None
    """The controller's live view; ``None`` when no controller runs in this process."""
    capacity: CapacitySignals | None = None
    """Grid-capacity signals (``ems.services.capacity``); ``None``: the capacity endpoints answer 501."""
    health: HealthChecks | None = None
    """Readiness of the process's components (``ems.health.SystemHealth``); ``None``: database only."""
    metrics: Collector | None = None
    """What ``/metrics`` shows of the components (``ems.metrics.SystemCollector``); ``None``: API only."""
    analytics: AnalyticsQueries | None = None
    """Rollup-backed analytics (``ems.storage.analytics``); ``None``: those endpoints answer 501 and the
    station-daily report is computed from the priced sessions."""

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)
