"""The billing services built together over the ports: what the composition root builds once and the API holds."""

from __future__ import annotations

from dataclasses import dataclass

from ems.clock import Clock
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.ports.control import ChargerControl
from ems.ports.stores import Storage
from ems.services.billing import BillingPolicy, BillingService, new_id
from ems.services.charge import PayBeforeStart
from ems.services.wallet import Wallet


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
