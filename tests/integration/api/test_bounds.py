"""Issue 10: amounts and numeric query parameters have bounds and answer 422 beyond them, on both back ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.bus import EventBus
from ems.clock import FakeClock
from ems.config import Settings
from ems.grid.capacity import CapacityPolicy
from ems.services.capacity import CapacityService
from tests.integration.api.conftest import ADMIN_KEY

PROBLEM = "application/problem+json"


@pytest.fixture
async def api(api_services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    api_services.capacity = CapacityService(
        CapacityPolicy(api_services.sites), bus=EventBus(), clock=FakeClock(), store=api_services.storage.signals
    )
    app = create_app(Settings(admin_api_key=ADMIN_KEY, _env_file=None), api_services)  # type: ignore[call-arg]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as c:
        yield c


async def _account(api: httpx.AsyncClient, admin: dict[str, str]) -> str:
    r = await api.post("/api/v1/users", json={"name": "Bo"}, headers=admin)
    assert r.status_code == 201, r.text
    account_id: str = r.json()["account_id"]
    return account_id


async def _top_up(
    api: httpx.AsyncClient, admin: dict[str, str], account_id: str, amount: str, key: str
) -> httpx.Response:
    return await api.post(
        f"/api/v1/accounts/{account_id}/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers={**admin, "Idempotency-Key": key},
    )


async def _balance(api: httpx.AsyncClient, admin: dict[str, str], account_id: str) -> str:
    r = await api.get(f"/api/v1/accounts/{account_id}", headers=admin)
    assert r.status_code == 200, r.text
    balance: str = r.json()["balance"]
    return balance


async def test_the_issues_overflowing_top_ups_are_422_and_write_nothing(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    account_id = await _account(api, admin)
    r = await _top_up(api, admin, account_id, "92233720368547758.08", "int64")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    for i in range(2):  # two top-ups of 9e16 on one account
        r = await _top_up(api, admin, account_id, "90000000000000000", f"9e16-{i}")
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert await _balance(api, admin, account_id) == "0.00"


async def test_maximum_amount_and_maximum_balance(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    account_id = await _account(api, admin)
    r = await _top_up(api, admin, account_id, "1000000.01", "over-max-amount")
    assert r.status_code == 422, r.text
    assert "at most 1000000 EUR" in r.text
    for i in range(10):  # exactly the maximum amount, ten times: the maximum balance
        r = await _top_up(api, admin, account_id, "1000000.00", f"max-{i}")
        assert r.status_code == 201, r.text
    assert await _balance(api, admin, account_id) == "10000000.00"
    r = await _top_up(api, admin, account_id, "0.01", "one-cent-too-many")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert "holds at most 10000000 EUR" in r.text
    assert await _balance(api, admin, account_id) == "10000000.00"


@pytest.mark.parametrize("horizon", ["2.48e-198", "nan", "NaN", "inf", "-inf", "1e308", "0", "-1", "59.9", "604801"])
async def test_capacity_horizon_outside_its_bounds_is_422(
    api: httpx.AsyncClient, admin: dict[str, str], horizon: str
) -> None:
    r = await api.get("/api/v1/sites/depot/capacity", params={"horizon_s": horizon}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (horizon, r.text)
    assert r.json()["errors"][0]["field"] == "horizon_s"


@pytest.mark.parametrize("horizon", ["60", "3600.5", "604800"])
async def test_capacity_horizon_within_bounds_answers(
    api: httpx.AsyncClient, admin: dict[str, str], horizon: str
) -> None:
    r = await api.get("/api/v1/sites/depot/capacity", params={"horizon_s": horizon}, headers=admin)
    assert r.status_code == 200, r.text


async def test_tariff_prices_are_bounded(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for body in (
        {"name": "absurd", "currency": "EUR", "energy_per_kwh": "99999999999999.99"},
        {"name": "negative", "currency": "EUR", "session_fee": "-1.00"},
        {"name": "bad day", "currency": "EUR", "tou": [{"name": "x", "start": "01:00", "end": "02:00", "days": [7]}]},
    ):
        r = await api.post("/api/v1/tariffs", json=body, headers=admin)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (body, r.text)
    r = await api.post(
        "/api/v1/tariffs", json={"name": "ok", "currency": "EUR", "energy_per_kwh": "0.35"}, headers=admin
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("first", "last"), [("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31"), ("1999-12-31", "2000-01-02")]
)
async def test_report_dates_outside_their_bounds_are_422(
    api: httpx.AsyncClient, admin: dict[str, str], first: str, last: str
) -> None:
    r = await api.get("/api/v1/reports/station-daily", params={"from": first, "to": last}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text


async def test_openapi_documents_problem_answers(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    top_up = spec["paths"]["/api/v1/accounts/{account_id}/top-ups"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "413", "422", "429", "503"} <= set(top_up)
    assert list(top_up["422"]["content"]) == [PROBLEM]
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in str(spec)
