"""The console over real storage (SQLite by default, PostgreSQL where a test asks), through httpx."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.app import console_deps, policy_from
from ems.clock import FakeClock
from ems.config import Settings
from ems.console.routes import build_console
from ems.domain.access import Role
from ems.domain.capacity import SiteLoadReading
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.domain.live import EvseLimitView, LiveSessionView, SitePlanView
from ems.ports.stores import Storage
from ems.services.billing_setup import build_billing
from ems.services.operators import create_operator
from ems.sitefile import load_site_file

ADMIN_KEY = "test-admin-key-0123456789"
EXAMPLE_SITE = Path(__file__).parents[3] / "examples" / "site.toml"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


@dataclass
class RecordingControl:
    """A ``ChargerControl`` that records what it is asked and answers ACCEPTED (the OCPP side is not under test)."""

    sent: list[tuple[str, StationCommand]] = field(default_factory=list)

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        self.sent.append((station_id, command))
        return CommandResult(CommandStatus.ACCEPTED, "Unlocked", {"echo": command.name})

    def is_online(self, station_id: str) -> bool:
        return True


@dataclass
class StaticMonitor:
    """A ``SiteMonitor`` reporting fixed views (what the controller would know live)."""

    load: SiteLoadReading = field(default_factory=SiteLoadReading)
    sessions: list[LiveSessionView] = field(default_factory=list)
    plan_view: SitePlanView | None = None
    limits: list[EvseLimitView] = field(default_factory=list)

    def site_load(self, site_id: str) -> SiteLoadReading:
        return self.load

    def live_sessions(self, site_id: str) -> list[LiveSessionView]:
        return self.sessions

    def plan(self, site_id: str) -> SitePlanView | None:
        return self.plan_view

    def evse_limits(self, site_id: str) -> list[EvseLimitView]:
        return self.limits


@dataclass
class Console:
    client: httpx.AsyncClient
    services: ApiServices
    control: RecordingControl
    clock: FakeClock
    monitor: StaticMonitor

    async def sign_in(self, email: str = "admin@example.org", password: str = PASSWORD) -> httpx.Response:
        form = await self.client.get("/console/sign-in")
        csrf = token(form.text)
        return await self.client.post(
            "/console/sign-in", data={"csrf": csrf, "email": email, "password": password, "next": "/console/stations"}
        )

    async def csrf(self, path: str) -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        return token(page.text)


def token(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture
async def console(sqlite_storage: Storage) -> AsyncIterator[Console]:
    async with make_console(sqlite_storage) as c:
        yield c


def make_console(storage: Storage, base_url: str = "http://ems.test") -> "_ConsoleContext":
    return _ConsoleContext(storage, base_url)


class _ConsoleContext:
    def __init__(self, storage: Storage, base_url: str) -> None:
        self.storage, self.base_url = storage, base_url

    async def __aenter__(self) -> Console:
        settings = Settings(admin_api_key=ADMIN_KEY, _env_file=None)  # type: ignore[arg-type,call-arg]
        sites, clock = load_site_file(EXAMPLE_SITE), FakeClock(T0)
        control = RecordingControl()
        billing = build_billing(self.storage, clock=clock, policy=policy_from(settings, sites), control=control)
        monitor = StaticMonitor()
        services = ApiServices(
            storage=self.storage, clock=clock, sites=sites, billing=billing, charger_control=control, monitor=monitor
        )
        app = create_app(settings, services)
        app.include_router(build_console(console_deps(settings, services)))
        for email, role in (("admin@example.org", Role.ADMIN), ("analyst@example.org", Role.ANALYST)):
            await create_operator(self.storage.operators, clock, email, PASSWORD, role)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=self.base_url)
        return Console(self.client, services, control, clock, monitor)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
