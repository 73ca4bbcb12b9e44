"""The billing endpoints against real storage (SQLite and PostgreSQL), through create_app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.app import policy_from
from ems.billing.webhook import sign
from ems.clock import FakeClock
from ems.config import Settings
from ems.domain.commands import CommandStatus, RemoteStart
from ems.domain.station import Station
from ems.services.billing_setup import build_billing
from tests.integration.api.conftest import ADMIN_KEY
from tests.unit.billing.fakes import FakeControl

PROBLEM = "application/problem+json"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def control() -> FakeControl:
    return FakeControl(CommandStatus.ACCEPTED)


@pytest.fixture
async def api(api_services: ApiServices, control: FakeControl) -> AsyncIterator[httpx.AsyncClient]:
    api_services.charger_control = control
    settings = Settings(  # type: ignore[call-arg]
        admin_api_key=ADMIN_KEY, payment_webhook_secret=WEBHOOK_SECRET, _env_file=None
    )
    api_services.billing = build_billing(
        api_services.storage,
        clock=api_services.clock,
        policy=policy_from(settings, api_services.sites),
        control=control,
        webhook_secret=WEBHOOK_SECRET.encode(),
    )
    app = create_app(settings, api_services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as c:
        yield c


async def _user_with_money(api: httpx.AsyncClient, admin: dict[str, str], amount: str = "20.00") -> str:
    r = await api.post(
        "/api/v1/users", json={"name": "Ada", "phone": "+31 6 1234", "email": "ada@example.org"}, headers=admin
    )
    assert r.status_code == 201, r.text
    account_id: str = r.json()["account_id"]
    r = await api.post(
        f"/api/v1/accounts/{account_id}/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers={**admin, "Idempotency-Key": "initial"},
    )
    assert r.status_code == 201, r.text
    return account_id


async def test_top_ups_are_idempotent_and_bad_ones_write_nothing(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    account_id = await _user_with_money(api, admin, "20.00")
    r = await api.get(f"/api/v1/accounts/{account_id}", headers=admin)
    assert r.json()["balance"] == "20.00" and r.json()["currency"] == "EUR"

    url, body = f"/api/v1/accounts/{account_id}/top-ups", {"amount": "5.50", "currency": "EUR"}
    first = await api.post(url, json=body, headers={**admin, "Idempotency-Key": "k1"})
    again = await api.post(url, json=body, headers={**admin, "Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["balance"] == "25.50"
    r = await api.post(url, json={"amount": "6.00", "currency": "EUR"}, headers={**admin, "Idempotency-Key": "k1"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM

    for i, bad in enumerate(
        [
            {"amount": "0", "currency": "EUR"},
            {"amount": "-5.00", "currency": "EUR"},
            {"amount": "5.00", "currency": "XYZ"},
            {"amount": "5.00", "currency": "USD"},
            {"amount": "5.001", "currency": "EUR"},
            {"amount": 5.0, "currency": "EUR"},
        ]
    ):
        r = await api.post(url, json=bad, headers={**admin, "Idempotency-Key": f"bad{i}"})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bad, r.text)
    r = await api.post(url, json=body, headers=admin)
    assert r.status_code == 422  # no Idempotency-Key
    statement = (await api.get(f"/api/v1/accounts/{account_id}/statement", headers=admin)).json()
    assert statement["balance"] == "25.50"
    assert [(line["kind"], line["amount"], line["balance_after"]) for line in statement["lines"]] == [
        ("top_up", "5.50", "25.50"),
        ("top_up", "20.00", "20.00"),
    ]


async def test_tariffs_validate_and_assign(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    tariff = {
        "name": "Standard",
        "currency": "EUR",
        "energy_per_kwh": "0.30",
        "session_fee": "1.00",
        "idle_per_minute": "0.10",
        "idle_grace_minutes": 15,
        "tou": [{"name": "peak", "start": "17:00", "end": "21:00", "energy_per_kwh": "0.45"}],
        "vat_percent": "21",
    }
    r = await api.post("/api/v1/tariffs", json=tariff, headers=admin)
    assert r.status_code == 201, r.text
    tariff_id = r.json()["id"]
    assert r.json()["tou"][0] == {
        "name": "peak",
        "start": "17:00",
        "end": "21:00",
        "days": [0, 1, 2, 3, 4, 5, 6],
        "energy_per_kwh": "0.45",
        "time_per_minute": None,
    }
    overlapping = {
        **tariff,
        "tou": [*tariff["tou"], {"name": "evening", "start": "20:00", "end": "23:00", "days": [4]}],
    }
    r = await api.post("/api/v1/tariffs", json=overlapping, headers=admin)
    assert r.status_code == 422
    assert any("'peak' and 'evening' overlap on Fri 20:00-21:00" in e["message"] for e in r.json()["errors"])
    r = await api.post("/api/v1/tariffs", json={**tariff, "energy_per_kwh": "-0.30", "currency": "XYZ"}, headers=admin)
    messages = [e["message"] for e in r.json()["errors"]]
    assert r.status_code == 422 and len(messages) == 2, messages
    assert len((await api.get("/api/v1/tariffs", headers=admin)).json()) == 1

    r = await api.put("/api/v1/sites/depot/tariff", json={"tariff_id": tariff_id}, headers=admin)
    assert r.status_code == 200 and r.json() == {"scope": "site", "scope_id": "depot", "tariff_id": tariff_id}
    assert (
        await api.put("/api/v1/sites/nowhere/tariff", json={"tariff_id": tariff_id}, headers=admin)
    ).status_code == 404
    assert (await api.put("/api/v1/sites/depot/tariff", json={"tariff_id": "nope"}, headers=admin)).status_code == 404
    assert (await api.delete(f"/api/v1/tariffs/{tariff_id}", headers=admin)).status_code == 409


async def test_cards_gain_account_and_mode(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    account_id = await _user_with_money(api, admin)
    r = await api.post("/api/v1/cards", json={"uid": "C1", "mode": "commercial"}, headers=admin)
    assert r.status_code == 422
    r = await api.post("/api/v1/cards", json={"uid": "C1", "mode": "commercial", "account_id": "nope"}, headers=admin)
    assert r.status_code == 422
    r = await api.post(
        "/api/v1/cards", json={"uid": "C1", "mode": "commercial", "account_id": account_id}, headers=admin
    )
    assert r.status_code == 201 and r.json()["mode"] == "commercial" and r.json()["user_id"] is not None
    spending = (await api.get("/api/v1/cards/C1/spending", headers=admin)).json()
    assert (spending["balance"], spending["sessions"], spending["spent"]) == ("20.00", 0, "0.00")


async def test_pay_before_start_holds_then_starts(
    api: httpx.AsyncClient, admin: dict[str, str], api_services: ApiServices, control: FakeControl
) -> None:
    await api_services.storage.stations.add(Station("CP001", site_id="depot"))
    account_id = await _user_with_money(api, admin, "20.00")
    body = {"station_id": "CP001", "evse_id": 1, "account_id": account_id}
    r = await api.post("/api/v1/charge/start", json=body, headers={**admin, "Idempotency-Key": "go-1"})
    assert r.status_code == 202, r.text
    charge = r.json()
    assert (charge["state"], charge["held"], charge["session_id"]) == ("pending", "20.00", None)
    ((_, command),) = control.sent
    assert isinstance(command, RemoteStart) and command.id_tag == charge["id_tag"] and command.evse_id == 1
    again = await api.post("/api/v1/charge/start", json=body, headers={**admin, "Idempotency-Key": "go-1"})
    assert again.status_code == 202 and again.json()["charge_id"] == charge["charge_id"] and len(control.sent) == 1
    assert (await api.get(f"/api/v1/accounts/{account_id}", headers=admin)).json()["held"] == "20.00"
    r = await api.post(f"/api/v1/charge/{charge['charge_id']}/stop", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert (await api.get(f"/api/v1/accounts/{account_id}", headers=admin)).json()["balance"] == "20.00"

    control.answer = CommandStatus.OFFLINE
    r = await api.post("/api/v1/charge/start", json=body, headers=admin)
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    assert r.json()["state"] == "cancelled" and "released" in r.json()["detail"]
    account = (await api.get(f"/api/v1/accounts/{account_id}", headers=admin)).json()
    assert (account["balance"], account["held"]) == ("20.00", "0.00")


async def test_pay_before_start_without_funds_says_why(
    api: httpx.AsyncClient, admin: dict[str, str], api_services: ApiServices, control: FakeControl
) -> None:
    await api_services.storage.stations.add(Station("CP001", site_id="depot"))
    account_id = await _user_with_money(api, admin, "2.00")
    r = await api.post("/api/v1/charge/start", json={"station_id": "CP001", "account_id": account_id}, headers=admin)
    assert r.status_code == 402 and "balance 2.00 EUR is below the 5.00 EUR needed" in r.json()["detail"]
    assert control.sent == []


async def test_drivers_see_only_their_own_account(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    mine = await _user_with_money(api, admin)
    user_id = (await api.get(f"/api/v1/accounts/{mine}", headers=admin)).json()["user_id"]
    other = await _user_with_money(api, admin)
    r = await api.post("/api/v1/api-keys", json={"name": "ada", "role": "driver", "user_id": user_id}, headers=admin)
    driver = {"Authorization": f"Bearer {r.json()['key']}"}
    assert (await api.get(f"/api/v1/accounts/{mine}", headers=driver)).status_code == 200
    assert (await api.get(f"/api/v1/accounts/{other}", headers=driver)).status_code == 403
    assert (await api.get(f"/api/v1/accounts/{other}/statement", headers=driver)).status_code == 403
    r = await api.post(
        f"/api/v1/accounts/{mine}/top-ups",
        json={"amount": "5", "currency": "EUR"},
        headers={**driver, "Idempotency-Key": "x"},
    )
    assert r.status_code == 403


async def test_payment_webhook_verifies_and_rejects_replays(
    api: httpx.AsyncClient, admin: dict[str, str], api_services: ApiServices
) -> None:
    account_id = await _user_with_money(api, admin, "1.00")
    now = int(api_services.clock.now().timestamp())
    event = {"id": "evt_1", "type": "payment.succeeded", "account_id": account_id, "amount": "10.00", "currency": "EUR"}
    raw = json.dumps(event).encode()
    url = "/api/v1/payments/acme-pay/webhook"

    def signed(body: bytes, at: int = now, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
        return {"EMS-Signature": sign(secret.encode(), body, at), "content-type": "application/json"}

    r = await api.post(url, content=raw, headers=signed(raw))
    assert r.status_code == 200 and r.json()["status"] == "credited", r.text
    r = await api.post(url, content=raw, headers=signed(raw))
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert (await api.post(url, content=raw, headers=signed(raw, secret="wrong-secret-xxxxxxx"))).status_code == 401
    assert (await api.post(url, content=raw, headers={"content-type": "application/json"})).status_code == 401
    clock = api_services.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(minutes=6).total_seconds())
    r = await api.post(url, content=raw, headers=signed(raw))
    assert r.status_code == 401 and "window" in r.json()["detail"]
    assert (await api.get(f"/api/v1/accounts/{account_id}", headers=admin)).json()["balance"] == "11.00"


async def test_openapi_documents_the_billing_endpoints(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/users",
        "/api/v1/accounts/{account_id}/top-ups",
        "/api/v1/tariffs",
        "/api/v1/sites/{site_id}/tariff",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/receipt.html",
        "/api/v1/charge/start",
        "/api/v1/charge/{charge_id}/stop",
        "/api/v1/reports/station-daily",
        "/api/v1/payments/{provider}/webhook",
        "/api/v1/cards/{uid}/spending",
    ):
        assert path in paths, path
