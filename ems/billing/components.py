"""The billing parts built together over the ports: what the composition root and the API hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ems.billing.charge import PayBeforeStart
from ems.billing.service import BillingPolicy, BillingService, new_id
from ems.billing.wallet import Wallet
from ems.clock import Clock
from ems.config import Settings
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.domain.site import Site
from ems.ports.control import ChargerControl
from ems.ports.stores import Storage


@dataclass(slots=True)
class Billing:
    service: BillingService
    wallet: Wallet
    charges: PayBeforeStart
    webhook_secret: bytes | None = None


class OfflineControl:
    """``ChargerControl`` for a process without an OCPP server: every station is offline."""

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        return CommandResult(CommandStatus.OFFLINE, "no OCPP server runs in this process")

    def is_online(self, station_id: str) -> bool:
        return False


def policy_from(settings: Settings, sites: Sequence[Site]) -> BillingPolicy:
    return BillingPolicy(
        min_hold=settings.billing_min_hold,
        max_hold=settings.billing_max_hold,
        default_currency=settings.billing_currency,
        timezones={site.id: site.timezone for site in sites},
        station_sites={spec.id: site.id for site in sites for spec in site.stations},
        default_site=sites[0].id if len(sites) == 1 else None,
    )


def build_billing(
    storage: Storage,
    *,
    clock: Clock,
    policy: BillingPolicy,
    control: ChargerControl | None = None,
    webhook_secret: bytes | None = None,
) -> Billing:
    service = BillingService(
        billing=storage.billing,
        cards=storage.cards,
        sessions=storage.sessions,
        samples=storage.samples,
        stations=storage.stations,
        control=control or OfflineControl(),
        clock=clock,
        policy=policy,
        ids=new_id,
    )
    return Billing(
        service, Wallet(storage.billing, clock, new_id, storage.transaction), PayBeforeStart(service), webhook_secret
    )
