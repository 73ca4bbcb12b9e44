from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.app import policy_from
from ems.clock import FakeClock
from ems.config import Settings
from ems.ports.stores import Storage
from ems.services.billing_setup import build_billing
from ems.sitefile import load_site_file

ADMIN_KEY = "test-admin-key-0123456789"
EXAMPLE_SITE = Path(__file__).parents[3] / "examples" / "site.toml"


@pytest.fixture
def settings() -> Settings:
    return Settings(admin_api_key=ADMIN_KEY, _env_file=None)  # type: ignore[arg-type,call-arg]


@pytest.fixture
def api_services(storage: Storage, settings: Settings) -> ApiServices:
    sites, clock = load_site_file(EXAMPLE_SITE), FakeClock()
    billing = build_billing(storage, clock=clock, policy=policy_from(settings, sites))
    return ApiServices(storage=storage, clock=clock, sites=sites, billing=billing)


@pytest.fixture
async def client(api_services: ApiServices, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, api_services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ems.test") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}
