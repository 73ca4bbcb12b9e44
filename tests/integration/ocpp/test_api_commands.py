"""``POST /api/v1/stations/{id}/commands/{command}`` against the real OCPP server and a simulated station."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain.events import SessionStarted, StationConnected
from ems.domain.station import OcppVersion, Station
from ems.services.billing import BillingPolicy
from ems.services.billing_setup import build_billing
from ems.sim.behaviour import run_station
from ems.tasks import cancel_and_wait
from tests.integration.ocpp.conftest import WAIT_S, OcppEnv

ADMIN_KEY = "test-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def client_for(env: OcppEnv, *, with_control: bool = True) -> httpx.AsyncClient:
    control = env.runtime.control if with_control else None
    services = ApiServices(
        storage=env.storage,
        clock=SystemClock(),
        sites=(),
        billing=build_billing(env.storage, clock=SystemClock(), policy=BillingPolicy(), control=control),
        bus=env.bus,
        charger_control=control,
    )
    app = create_app(Settings(admin_api_key=ADMIN_KEY, _env_file=None), services)  # type: ignore[arg-type,call-arg]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test")


@pytest.fixture
async def api(env: OcppEnv, version: OcppVersion) -> AsyncIterator[httpx.AsyncClient]:
    sim = await env.station("CP-API", version)
    task = asyncio.create_task(run_station(sim))
    await env.wait_for(StationConnected, lambda e: e.station_id == "CP-API")
    async with await client_for(env) as client:
        yield client
    await cancel_and_wait(task)


async def test_remote_start_through_the_api(env: OcppEnv, api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/stations/CP-API/commands/remote-start", json={"id_tag": "GOOD-CARD", "evse_id": 1}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ACCEPTED"
    await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-API", within_s=WAIT_S)


async def test_profile_and_results_through_the_api(api: httpx.AsyncClient) -> None:
    body = {
        "evse_id": 1,
        "profile_id": 3,
        "purpose": "TxDefaultProfile",
        "rate_unit": "W",
        "periods": [{"start_offset_s": 0, "limit": 7400}],
    }
    r = await api.post("/api/v1/stations/CP-API/commands/set-charging-profile", json=body, headers=AUTH)
    assert r.json() == {"status": "ACCEPTED", "detail": "Accepted", "data": {}}
    r = await api.post("/api/v1/stations/CP-API/commands/get-local-list-version", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "ACCEPTED"


async def test_bad_requests(env: OcppEnv, api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/stations/CP-API/commands/remote-start", json={"evse_id": "x"}, headers=AUTH)
    assert r.status_code == 422 and any("id_tag" in e for e in r.text.split('"'))
    r = await api.post("/api/v1/stations/CP-API/commands/remote-start", json={"id_tag": "A", "bogus": 1}, headers=AUTH)
    assert r.status_code == 422
    r = await api.post(
        "/api/v1/stations/CP-API/commands/reserve-now",
        json={"reservation_id": 1, "id_tag": "A", "expires_at": "2026-01-01T00:00:00"},
        headers=AUTH,
    )
    assert r.status_code == 422 and "UTC offset" in r.text
    r = await api.post("/api/v1/stations/CP-API/commands/self-destruct", json={}, headers=AUTH)
    assert r.status_code == 404
    r = await api.post("/api/v1/stations/NOPE/commands/reset", json={}, headers=AUTH)
    assert r.status_code == 404
    r = await api.post("/api/v1/stations/CP-API/commands/reset", json={})
    assert r.status_code == 401


async def test_offline_and_no_server(env: OcppEnv) -> None:
    await env.storage.stations.add(Station(id="CP-SLEEPY"))
    async with await client_for(env) as client:
        r = await client.post("/api/v1/stations/CP-SLEEPY/commands/reset", json={"kind": "Hard"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["status"] == "OFFLINE"
    async with await client_for(env, with_control=False) as client:
        r = await client.post("/api/v1/stations/CP-SLEEPY/commands/reset", json={}, headers=AUTH)
        assert r.status_code == 503
