"""End to end through simulated OCPP stations, on both storage back ends: top-up over the API, a
commercial card, a transaction of known energy under a known tariff -> the exact balance and receipt;
and the app path (pay-before-start) with RemoteStart to a running simulated station."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.bus import EventBus
from ems.clock import FakeClock, SystemClock
from ems.config import Settings
from ems.domain.events import SessionEnded
from ems.domain.site import Site
from ems.domain.station import OcppVersion, Station
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.runtime import OcppRuntime
from ems.ocpp.server import OcppServerConfig
from ems.services.billing import BillingPolicy
from ems.services.billing_listener import BillingListener
from ems.services.billing_setup import Billing, build_billing
from ems.sim.behaviour import run_station
from ems.sim.ev import Ev
from ems.sim.station import SimStation
from ems.storage.factory import SqlStorage
from ems.tasks import cancel_and_wait

ADMIN_KEY = "test-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
WAIT_S = 10.0
"""Generous for a loaded 2-core machine; every wait ends as soon as its condition holds."""
TARIFF = {"name": "Depot", "currency": "EUR", "energy_per_kwh": "0.30", "session_fee": "1.00", "vat_percent": "21"}


@dataclass
class Env:
    api: httpx.AsyncClient
    billing: Billing
    listener: BillingListener
    runtime: OcppRuntime
    storage: SqlStorage
    bus: EventBus

    async def wait(self, done: object) -> None:
        await asyncio.wait_for(self.listener.wait_until(done), WAIT_S)  # type: ignore[arg-type]


@pytest.fixture
async def env(storage: SqlStorage, tmp_path: Path) -> AsyncIterator[Env]:
    bus = EventBus()
    clock = SystemClock()
    policy = BillingPolicy(timezones={"depot": "Europe/Amsterdam"})
    config = OcppServerConfig(port=0)
    control = OcppChargerControl(LinkRegistry(), timeout_s=config.command_timeout_s)
    billing = build_billing(storage, clock=clock, policy=policy, control=control)
    runtime = await OcppRuntime.open(
        config, storage, bus, clock, journal_path=tmp_path / "journal.db", authorizer=billing.service, control=control
    )
    listener = BillingListener(billing.service, bus)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runtime.run(stop)), asyncio.create_task(listener.run(stop))]
    await asyncio.wait_for(runtime.server.started.wait(), WAIT_S)
    services = ApiServices(
        storage=storage,
        clock=clock,
        sites=(Site("depot", timezone="Europe/Amsterdam"),),
        bus=bus,
        charger_control=runtime.control,
        billing=billing,
    )
    app = create_app(Settings(admin_api_key=ADMIN_KEY, _env_file=None), services)  # type: ignore[call-arg]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as api:
        yield Env(api, billing, listener, runtime, storage, bus)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)


async def _setup(env: Env, station_id: str, *, top_up: str = "20.00", card: str | None = None) -> str:
    await env.storage.stations.add(Station(station_id, site_id="depot"))
    r = await env.api.post("/api/v1/tariffs", json=TARIFF, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await env.api.put("/api/v1/sites/depot/tariff", json={"tariff_id": r.json()["id"]}, headers=ADMIN)
    assert r.status_code == 200
    r = await env.api.post("/api/v1/users", json={"name": "Ada", "phone": "+31 6 1234"}, headers=ADMIN)
    account_id: str = r.json()["account_id"]
    r = await env.api.post(
        f"/api/v1/accounts/{account_id}/top-ups",
        json={"amount": top_up, "currency": "EUR"},
        headers={**ADMIN, "Idempotency-Key": "e2e-1"},
    )
    assert r.status_code == 201, r.text
    if card is not None:
        body = {"uid": card, "mode": "commercial", "account_id": account_id}
        assert (await env.api.post("/api/v1/cards", json=body, headers=ADMIN)).status_code == 201
    return account_id


@pytest.mark.slow
@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201], ids=["1.6", "2.0.1"])
async def test_prepaid_card_session_is_priced_and_captured_exactly(env: Env, version: OcppVersion) -> None:
    account_id = await _setup(env, "CP-E2E", card="CARD-E2E")
    clock = FakeClock(T0)
    sim = SimStation("CP-E2E", env.runtime.server.url, version, clock=clock)
    try:
        await sim.connect()
        await sim.boot()
        assert (await env.api.get(f"/api/v1/accounts/{account_id}", headers=ADMIN)).json()["balance"] == "20.00"
        await sim.start(1, "CARD-E2E", Ev(soc=0.2, max_power_w=11_000))
        await env.wait(lambda: len(env.listener.started) == 1)
        (session_id,) = env.listener.started
        account = (await env.api.get(f"/api/v1/accounts/{account_id}", headers=ADMIN)).json()
        assert (account["balance"], account["held"]) == ("0.00", "20.00")
        for _ in range(3):  # 11 kW for 30 min: 5.5 kWh
            clock.advance(600)
            sim.advance(600)
            await sim.send_meter_values(1)
        await sim.stop(1)
        await env.wait(lambda: session_id in env.listener.ended)
    finally:
        await sim.close()

    # 1.00 fee + 5.5 kWh x 0.30 = 2.65 net; VAT 21% = 0.5565 -> 0.56; total 3.21.
    r = await env.api.get(f"/api/v1/sessions/{session_id}", headers=ADMIN)
    session = r.json()
    assert r.status_code == 200 and session["status"] == "completed"
    assert session["energy_wh"] == pytest.approx(5_500, abs=1)
    cost = session["cost"]
    assert (cost["final"], cost["net"], cost["vat"], cost["total"], cost["charged"]) == (
        True,
        "2.65",
        "0.56",
        "3.21",
        "3.21",
    )
    assert sum(Decimal(li["amount"]) for li in cost["line_items"]) == Decimal("3.21")
    account = (await env.api.get(f"/api/v1/accounts/{account_id}", headers=ADMIN)).json()
    assert (account["balance"], account["held"]) == ("16.79", "0.00")
    receipt = (await env.api.get(f"/api/v1/sessions/{session_id}/receipt.html", headers=ADMIN)).text
    assert "id=total>3.21<" in receipt and "CARD-E2E" in receipt

    # A duplicate stop (a resent SessionEnded, a second settle) changes nothing.
    ended = SessionEnded(at=T0, session_id=session_id, station_id="CP-E2E", evse_id=1, energy_wh=5500.0)
    handled = env.listener.handled
    await env.bus.publish(ended)
    await env.wait(lambda: env.listener.handled > handled)
    await env.billing.service.session_ended(session_id)
    statement = (await env.api.get(f"/api/v1/accounts/{account_id}/statement", headers=ADMIN)).json()
    assert [(line["kind"], line["balance_after"]) for line in statement["lines"]] == [
        ("capture", "16.79"),
        ("hold", "0.00"),
        ("top_up", "20.00"),
    ]
    spending = (await env.api.get("/api/v1/cards/CARD-E2E/spending", headers=ADMIN)).json()
    assert (spending["sessions"], spending["spent"], spending["balance"]) == (1, "3.21", "16.79")
    report = (await env.api.get("/api/v1/reports/station-daily?from=2026-01-05&to=2026-01-05", headers=ADMIN)).json()
    assert [(r["station_id"], r["sessions"], r["hours_in_use"], r["fees_collected"]) for r in report] == [
        ("CP-E2E", 1, "0.50", {"EUR": "3.21"})
    ]


@pytest.mark.slow
async def test_unfunded_card_is_not_accepted_at_the_charger(env: Env) -> None:
    await _setup(env, "CP-POOR", top_up="2.00", card="CARD-POOR")
    sim = SimStation("CP-POOR", env.runtime.server.url, OcppVersion.V16, clock=FakeClock(T0))
    try:
        await sim.connect()
        await sim.boot()
        with pytest.raises(PermissionError):
            await sim.start(1, "CARD-POOR", Ev(soc=0.2, max_power_w=11_000))
        assert (await sim.authorize("NO-SUCH-CARD")).value == "Invalid"
    finally:
        await sim.close()
    decision = await env.billing.service.authorize("CARD-POOR", station_id="CP-POOR")
    assert decision.reason == "balance 2.00 EUR is below the 5.00 EUR needed to start; please top up"


@pytest.mark.slow
@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201], ids=["1.6", "2.0.1"])
async def test_pay_before_start_through_a_simulated_station(env: Env, version: OcppVersion) -> None:
    account_id = await _setup(env, "CP-APP")
    clock = FakeClock(T0)
    sim = SimStation("CP-APP", env.runtime.server.url, version, clock=clock)
    running = asyncio.create_task(run_station(sim))
    try:
        await asyncio.wait_for(sim.connected.wait(), WAIT_S)
        body = {"station_id": "CP-APP", "evse_id": 1, "account_id": account_id}
        r = await env.api.post("/api/v1/charge/start", json=body, headers={**ADMIN, "Idempotency-Key": "app-1"})
        assert r.status_code == 202, r.text
        charge_id = r.json()["charge_id"]
        await env.wait(lambda: len(env.listener.started) == 1)
        (session_id,) = env.listener.started
        followed = (await env.api.get(f"/api/v1/charge/{charge_id}", headers=ADMIN)).json()
        assert (followed["state"], followed["session_id"]) == ("charging", session_id)
        r = await env.api.post(f"/api/v1/charge/{charge_id}/stop", headers=ADMIN)
        assert r.status_code == 200 and r.json()["command_status"] == "ACCEPTED", r.text
        await env.wait(lambda: session_id in env.listener.ended)
    finally:
        await cancel_and_wait(running)
        await sim.close()
    cost = (await env.api.get(f"/api/v1/sessions/{session_id}", headers=ADMIN)).json()["cost"]
    account = (await env.api.get(f"/api/v1/accounts/{account_id}", headers=ADMIN)).json()
    assert cost["charged"] == cost["total"] and Decimal(cost["total"]) >= Decimal("1.21")  # fee + VAT at least
    assert Decimal(account["balance"]) == Decimal("20.00") - Decimal(cost["total"]) and account["held"] == "0.00"
    assert (await env.api.get(f"/api/v1/charge/{charge_id}", headers=ADMIN)).json()["state"] == "completed"
