from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.clock import FakeClock
from ems.config import Settings
from ems.ports.stores import Storage
from ems.sitefile import load_site_file

ADMIN_KEY = "test-admin-key-0123456789"
EXAMPLE_SITE = Path(__file__).parents[3] / "examples" / "site.toml"


@pytest.fixture
def api_services(storage: Storage) -> ApiServices:
    return ApiServices(storage=storage, clock=FakeClock(), sites=load_site_file(EXAMPLE_SITE))


@pytest.fixture
async def client(api_services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(admin_api_key=ADMIN_KEY, _env_file=None)  # type: ignore[arg-type,call-arg]
    app = create_app(settings, api_services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ems.test") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}
