"""The API app with the driver pages, over a real storage (both back ends) and a recording ChargerControl."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.clock import FakeClock
from ems.config import Settings
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.domain.site import Site
from ems.domain.station import Station
from ems.ports.stores import Storage
from ems.services.billing import BillingPolicy
from ems.services.billing_setup import Billing, build_billing
from ems.services.drivers import DriverAuth
from ems.throttle import ThrottleSettings
from ems.web.app import web_router
from ems.web.payments import TestPaymentProvider
from ems.web.services import WebServices, WebSettings

ADMIN_KEY = "test-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
T0 = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
PHONE, PIN = "+46 70 123 45 67", "2468"
TARIFF = {"name": "Depot", "currency": "EUR", "energy_per_kwh": "0.30", "session_fee": "1.00", "vat_percent": "21"}


@dataclass
class RecordingControl:
    """A station link that answers every command with ``answer`` and records, per command, the account's
    held amount at the moment it was sent (pay-before-start: the hold must be committed by then)."""

    billing: Billing | None = None
    online: bool = True
    answer: CommandStatus = CommandStatus.ACCEPTED
    sent: list[tuple[StationCommand, int | None]] = field(default_factory=list)
    account_id: str | None = None

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        held = None
        if self.billing is not None and self.account_id is not None:
            held = (await self.billing.service.billing.ledger.balance(self.account_id)).held_minor
        self.sent.append((command, held))
        return CommandResult(self.answer, None if self.answer is CommandStatus.ACCEPTED else "refused")

    def is_online(self, station_id: str) -> bool:
        return self.online


@dataclass
class WebEnv:
    client: httpx.AsyncClient
    storage: Storage
    billing: Billing
    control: RecordingControl
    clock: FakeClock
    services: WebServices
    app: FastAPI
    account_id: str = ""
    user_id: str = ""

    async def csrf(self, path: str) -> str:
        page = await self.client.get(path)
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert match, page.text
        return match.group(1)

    async def sign_in(self, path: str = "/c/CP-1/1", phone: str = PHONE, pin: str = PIN) -> httpx.Response:
        token = await self.csrf(path)
        return await self.client.post(f"{path}/sign-in", data={"csrf": token, "phone": phone, "pin": pin})

    async def balance(self) -> Decimal:
        b = await self.billing.service.billing.ledger.balance(self.account_id)
        return Decimal(b.available_minor) / 100


@pytest.fixture
async def web(storage: Storage) -> AsyncIterator[WebEnv]:
    clock = FakeClock(T0)
    control = RecordingControl()
    sites = (Site("depot", name="Depot", timezone="Europe/Stockholm"),)
    policy = BillingPolicy(timezones={"depot": "Europe/Stockholm"}, default_site="depot")
    billing = build_billing(storage, clock=clock, policy=policy, control=control)
    control.billing = billing
    services = ApiServices(storage=storage, clock=clock, sites=sites, billing=billing, charger_control=control)
    settings = Settings(admin_api_key=ADMIN_KEY, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, services)
    test_pay = TestPaymentProvider()
    web_services = WebServices(
        billing=billing,
        drivers=DriverAuth(storage.driver_auth, storage.billing.users, clock),
        stations=storage.stations,
        sessions=storage.sessions,
        samples=storage.samples,
        cards=storage.cards,
        clock=clock,
        sites=sites,
        control=control,
        payments=test_pay,
        test_payments=test_pay,
    )
    throttle = ThrottleSettings(free_failures=3, max_lockout_s=60)
    app.include_router(
        web_router(WebSettings("https://charge.example.com", b"k" * 32), web_services, throttle=throttle)
    )
    await storage.stations.add(Station("CP-1", site_id="depot"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as client:
        env = WebEnv(client, storage, billing, control, clock, web_services, app)
        r = await client.post("/api/v1/tariffs", json=TARIFF, headers=ADMIN)
        assert r.status_code == 201, r.text
        r = await client.put("/api/v1/sites/depot/tariff", json={"tariff_id": r.json()["id"]}, headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/users", json={"name": "Ada", "phone": PHONE, "pin": PIN}, headers=ADMIN)
        assert r.status_code == 201, r.text
        env.user_id, env.account_id = r.json()["id"], r.json()["account_id"]
        control.account_id = env.account_id
        yield env
