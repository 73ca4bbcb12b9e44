"""What the driver pages need from the rest of ems, handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from ems.clock import Clock
from ems.domain.site import Site
from ems.ports.billing import PaymentProvider
from ems.ports.control import ChargerControl
from ems.ports.monitor import SiteMonitor
from ems.ports.stores import CardStore, MeterSampleStore, SessionStore, StationStore
from ems.services.billing_setup import Billing
from ems.services.drivers import DriverAuth
from ems.web.payments import TestPaymentProvider


@dataclass(frozen=True, slots=True)
class WebSettings:
    public_url: str
    """Base of the URLs printed on the stickers, e.g. ``https://charge.example.com``."""
    secret: bytes
    """Signs the CSRF tokens."""


@dataclass(slots=True)
class WebServices:
    billing: Billing
    drivers: DriverAuth
    stations: StationStore
    sessions: SessionStore
    samples: MeterSampleStore
    cards: CardStore
    clock: Clock
    sites: tuple[Site, ...]
    control: ChargerControl | None = None
    """``None``: no OCPP server in this process (every charger shows as offline)."""
    monitor: SiteMonitor | None = None
    """The controller's live view, for the plan's expected finish; ``None``: not shown."""
    payments: PaymentProvider | None = None
    """Where top-ups are paid; ``None``: the page says top-ups are not available here."""
    test_payments: TestPaymentProvider | None = None
    """Set when ``payments`` is the built-in test provider, whose confirmation page ems serves."""

    def site_of(self, site_id: str | None) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)
