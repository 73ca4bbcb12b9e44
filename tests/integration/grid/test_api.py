"""Capacity through the REST API (both storage back ends), and a `mosquitto_pub` forecast seen by the API."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.bus import EventBus
from ems.clock import FakeClock, SystemClock
from ems.config import Settings
from ems.grid.capacity import CapacityPolicy
from ems.ports.stores import Storage
from ems.services.billing import BillingPolicy
from ems.services.billing_setup import build_billing
from ems.services.capacity import CapacityService
from tests.integration.grid.conftest import WAIT_S, forecast, listening, make_site, running_grid
from tests.unit.grid.helpers import T0, site

ADMIN_KEY = "grid-test-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FORECAST = {
    "message_id": "api-1",
    "forecasted_blocks": [
        {"capacity": 40, "unit": "KW", "start_time": "2026-01-05T08:00:00Z", "end_time": "2026-01-05T09:00:00Z"},
        {
            "capacity": 50,
            "unit": "A",
            "phase": "TWO",
            "start_time": "2026-01-05T08:30:00Z",
            "end_time": "2026-01-05T10:00:00Z",
        },
    ],
}


def client_for(services: ApiServices) -> httpx.AsyncClient:
    app = create_app(Settings(admin_api_key=ADMIN_KEY, _env_file=None), services)  # type: ignore[call-arg]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test")


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[tuple[httpx.AsyncClient, Storage]]:
    clock = FakeClock(T0)
    the_site = site()
    service = CapacityService(CapacityPolicy([the_site]), bus=EventBus(), clock=clock, store=storage.signals)
    billing = build_billing(storage, clock=clock, policy=BillingPolicy())
    services = ApiServices(storage=storage, clock=clock, sites=(the_site,), billing=billing, capacity=service)
    async with client_for(services) as client:
        yield client, storage


async def test_post_forecast_then_get_the_timeline(api: tuple[httpx.AsyncClient, Storage]) -> None:
    client, storage = api
    response = await client.post("/api/v1/sites/depot/capacity", json=FORECAST, headers=ADMIN)
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["accepted"] is True and ack["message_id"] == "api-1"
    assert ack["in_force"]["capacity_w"] == 40_000

    got = (await client.get("/api/v1/sites/depot/capacity?horizon_s=10800", headers=ADMIN)).json()
    assert got["in_force"]["capacity_source"] == "forecast"
    assert [(i["start"], i["capacity_w"], i["phase_limits_a"]["L2"]) for i in got["timeline"]] == [
        ("2026-01-05T08:00:00Z", 40_000, 160),
        ("2026-01-05T08:30:00Z", 40_000, 50),
        ("2026-01-05T09:00:00Z", 100_000, 50),
        ("2026-01-05T10:00:00Z", 100_000, 160),
    ]
    assert got["forecast"]["message_id"] == "api-1" and got["limit"] is None
    assert got["static"]["failsafe_capacity_w"] == 20_000
    stored = await storage.signals.for_site("depot")
    assert [(s.message_id, ok) for s, ok, _ in stored] == [("api-1", True)]


async def test_limit_for_a_circuit_by_query(api: tuple[httpx.AsyncClient, Storage]) -> None:
    client, _ = api
    body = {"forecasted_blocks": [{"capacity": 7, "unit": "KW"}]}
    response = await client.post(
        "/api/v1/sites/depot/capacity?kind=limit&circuit_id=feeder-a", json=body, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    got = (await client.get("/api/v1/sites/depot/capacity?circuit_id=feeder-a", headers=ADMIN)).json()
    assert got["in_force"]["capacity_w"] == 7_000 and got["in_force"]["end"] is None
    assert got["limit"]["blocks"][0]["end"] is None


async def test_rejected_body_is_problem_json_and_audited(api: tuple[httpx.AsyncClient, Storage]) -> None:
    client, storage = api
    bad = {"message_id": "bad", "forecasted_blocks": [{"capacity": -1, "unit": "parsec"}]}
    response = await client.post("/api/v1/sites/depot/capacity", json=bad, headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    messages = [e["message"] for e in response.json()["errors"]]
    assert any("negative" in m for m in messages) and any("parsec" in m for m in messages)
    stored = await storage.signals.for_site("depot")
    assert stored[0][1] is False and "negative" in (stored[0][2] or "")
    garbage = await client.post(
        "/api/v1/sites/depot/capacity", content=b"{", headers={**ADMIN, "content-type": "application/json"}
    )
    assert garbage.status_code == 422
    log = (await client.get("/api/v1/sites/depot/capacity/signals?limit=5", headers=ADMIN)).json()
    assert [(r["accepted"], r["payload"], r["signal"]["message_id"]) for r in log] == [
        (False, "{", None),
        (False, json.dumps(bad, separators=(",", ":")), "bad"),  # as httpx sent it
    ]
    assert "negative" in log[1]["error"]
    assert (await client.get("/api/v1/sites/nope/capacity/signals", headers=ADMIN)).status_code == 404


async def test_unknown_site_and_no_key(api: tuple[httpx.AsyncClient, Storage]) -> None:
    client, _ = api
    assert (await client.post("/api/v1/sites/nope/capacity", json=FORECAST, headers=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/sites/nope/capacity", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/sites/depot/capacity?circuit_id=x", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/sites/depot/capacity")).status_code == 401


@pytest.mark.mqtt
async def test_mosquitto_pub_forecast_is_visible_in_the_api(sqlite_storage: Storage) -> None:
    """The issue's done-criterion: mosquitto_pub -> ack on the ack topic -> GET shows it."""
    the_site = make_site()
    body = forecast(22, "from-mosquitto-pub")
    async with running_grid(the_site) as grid, listening(the_site.id) as op:
        billing = build_billing(sqlite_storage, clock=SystemClock(), policy=BillingPolicy())
        services = ApiServices(
            storage=sqlite_storage, clock=SystemClock(), sites=(the_site,), billing=billing, capacity=grid.service
        )
        mosquitto_pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        proc = await asyncio.create_subprocess_exec(
            mosquitto_pub,
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-t",
            grid.topic("capacity/forecast"),
            "-m",
            json.dumps(body),
        )
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
        ack = await op.expect(grid.topic("capacity/ack"))
        assert ack["message_id"] == "from-mosquitto-pub"
        async with client_for(services) as client:
            got = (await client.get(f"/api/v1/sites/{the_site.id}/capacity", headers=ADMIN)).json()
        assert got["in_force"]["capacity_w"] == 22_000
        assert got["forecast"]["message_id"] == "from-mosquitto-pub"
        status = await op.expect(grid.topic("status"))
        assert status["site_id"] == the_site.id
