"""Issue 13, end to end in a real browser: headless Chromium (Debian's, through Playwright) at phone size
drives a whole ems process (real API and OCPP servers on port 0) and a simulated station of each OCPP version:
scan URL -> sign in -> top up -> start -> live kWh rising -> stop -> receipt; the balance afterwards is the
balance before minus the receipt's total, to the cent.

Set ``EMS_E2E_SCREENSHOTS=docs`` to (re)write the screenshots in ``docs/web-driver-*.png``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from ems.app import Runtime, System, build_system
from ems.bus import EventBus
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain.billing import AssignmentScope, TariffAssignment
from ems.domain.site import Site
from ems.domain.station import OcppVersion, Station
from ems.domain.tariff import Tariff
from ems.services.drivers import DriverAuth
from ems.sim.behaviour import run_station
from ems.sim.ev import Ev
from ems.sim.station import SimStation
from ems.storage.factory import SqlStorage
from ems.supervisor import run_components
from ems.tasks import cancel_and_wait

CHROMIUM = "/usr/bin/chromium"
PHONE, PIN = "+354 555 1234", "4711"
WAIT_MS = 20_000
"""Generous for a loaded 2-core machine; every wait ends as soon as its condition holds."""
TARIFF = Tariff(
    "depot",
    "Depot",
    "EUR",
    energy_per_kwh=Decimal("0.30"),
    time_per_minute=Decimal("0.02"),
    session_fee=Decimal("1.00"),
    idle_per_minute=Decimal("0.10"),
    idle_grace_minutes=15,
    vat_percent=Decimal("21"),
)


@pytest.fixture
async def system(sqlite_storage: SqlStorage, tmp_path: Path) -> AsyncIterator[System]:
    settings = Settings(
        api_port=0,
        ocpp_port=0,
        data_dir=tmp_path,
        ocpp_require_password=False,
        web_test_payments=True,
        web_secret="e2e-web-secret-0123456789",
        _env_file=None,
    )  # type: ignore[call-arg]
    site = Site("depot", name="Depot", timezone="Atlantic/Reykjavik")
    runtime = Runtime(settings=settings, sites=(site,), clock=SystemClock(), bus=EventBus(), storage=sqlite_storage)
    system = await build_system(runtime)
    billing = sqlite_storage.billing
    await billing.tariffs.add(TARIFF)
    await billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "depot"))
    user, _ = await system.billing.wallet.create_user("Ada", currency="EUR", phone=PHONE)
    await DriverAuth(sqlite_storage.driver_auth, billing.users, runtime.clock).set_pin(user.id, PIN)
    stop = asyncio.Event()
    task = asyncio.create_task(run_components(system.components(), stop, system.supervisor))
    try:
        await asyncio.wait_for(system.api.started.wait(), 10)
        await asyncio.wait_for(system.ocpp.started.wait(), 10)
        yield system
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def _shot(page: Page, name: str) -> None:
    target = os.environ.get("EMS_E2E_SCREENSHOTS")
    if target:
        await page.screenshot(path=str(Path(target) / f"web-driver-{name}.png"), full_page=True)


def _euros(text: str) -> Decimal:
    return Decimal(text.replace("€", "").replace(",", "").strip())


@pytest.mark.slow
@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201], ids=["1.6", "2.0.1"])
async def test_scan_sign_in_top_up_charge_stop_receipt(system: System, browser: Browser, version: OcppVersion) -> None:
    station_id = f"CP-WEB-{version.value.replace('.', '')}"
    await system.services.storage.stations.add(Station(station_id, site_id="depot"))
    sim = SimStation(station_id, system.ocpp.url, version, meter_interval_s=1.0, tick_s=0.5)
    sim.evses[1].ev = Ev(soc=0.2, max_power_w=22_000)  # the car is plugged in before the driver scans
    running = asyncio.create_task(run_station(sim))
    shots = version is OcppVersion.V16
    try:
        await asyncio.wait_for(sim.connected.wait(), 10)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)

        # Scan: the sticker's URL
        await page.goto(f"{system.api.url}/c/{station_id}/1")
        await page.get_by_text("Connector 1").first.wait_for()
        assert "€0.30 per kWh" in await page.locator("#prices").inner_text()
        if shots:
            await _shot(page, "1-scan")
        # The switch in the header: Gujarati, then back to English (remembered in a cookie)
        await page.get_by_role("link", name="ગુજરાતી").click()
        await page.get_by_role("button", name="સાઇન ઇન").wait_for()
        assert "€0.30 પ્રતિ kWh" in await page.locator("#prices").inner_text()
        if shots:
            await _shot(page, "1-scan-gu")
        await page.get_by_role("link", name="English").click()
        await page.get_by_role("button", name="Sign in").wait_for()

        # Sign in
        await page.get_by_label("Phone").fill(PHONE)
        await page.get_by_label("PIN").fill(PIN)
        await page.get_by_role("button", name="Sign in").click()
        await page.locator("#balance").wait_for()
        assert await page.locator("#balance").inner_text() == "€0.00"
        assert "too low to start" in await page.locator("#low-balance").inner_text()

        # Top up 20.00 through the test provider
        await page.get_by_role("button", name="Top up €20.00").click()
        await page.get_by_role("heading", name="Test payment").wait_for()
        if shots:
            await _shot(page, "2-test-payment")
        await page.get_by_role("button", name="Pay €20.00").click()
        await page.locator("#start").wait_for()
        before = _euros(await page.locator("#balance").inner_text())
        assert before == Decimal("20.00")
        if shots:
            await _shot(page, "3-ready")

        # Start: hold, then RemoteStart; the page follows the session
        await page.get_by_role("button", name="Start charging").click()
        await page.wait_for_url("**/charge/*")
        await page.wait_for_function(
            "() => parseFloat(document.getElementById('charge').dataset.energyWh || '0') > 0", timeout=WAIT_MS
        )
        first_wh = float(await page.locator("#charge").get_attribute("data-energy-wh") or 0)
        await page.wait_for_function(
            f"() => parseFloat(document.getElementById('charge').dataset.energyWh || '0') > {first_wh}",
            timeout=WAIT_MS,
        )
        assert "kWh" in await page.locator("#energy").inner_text()
        assert await page.locator("#state").inner_text() == "Charging"
        assert "kW" in await page.locator("#power").inner_text()
        if shots:
            await _shot(page, "4-charging")

        # Stop, then the receipt
        await page.get_by_role("button", name="Stop charging").click()
        await page.wait_for_url("**/me/sessions/*", timeout=WAIT_MS)
        await page.locator("#total").wait_for()
        total = Decimal(await page.locator("#total").get_attribute("data-amount") or "")
        after = _euros(await page.locator("#balance").inner_text())
        assert total >= Decimal("1.21")  # the session fee with VAT at least
        assert after == before - total, (before, total, after)
        assert _euros(await page.locator("#charged").inner_text()) == total
        receipt = await page.locator("#receipt").inner_text()
        assert "Session fee" in receipt and "Energy" in receipt and "VAT" in receipt
        assert "GMT" in await page.locator("#started").inner_text()  # the site's zone, not a UTC ISO string
        if shots:
            await _shot(page, "5-receipt")
        receipt_url = page.url

        # The same receipt in Swedish, from the language switch: amounts in the Swedish format
        await page.get_by_role("link", name="Svenska").click()
        await page.get_by_role("heading", name="Kvitto").wait_for()
        assert await page.locator("#total").inner_text() == f"{total:.2f}".replace(".", ",") + "\xa0€"
        if shots:
            await _shot(page, "7-receipt-sv")
        await page.goto(receipt_url + "?lang=en")

        # My sessions lists it
        await page.get_by_role("link", name="My sessions").first.click()
        await page.locator("#sessions").wait_for()
        assert station_id in await page.locator("#sessions").inner_text()
        if shots:
            await _shot(page, "6-my-sessions")
        # the ledger agrees with the page
        account = (await system.services.storage.billing.ledger.accounts_for_user(await _user_id(system)))[0]
        balance = await system.services.storage.billing.ledger.balance(account.id)
        assert (Decimal(balance.available_minor) / 100, balance.held_minor) == (after, 0)
        await context.close()
    finally:
        await cancel_and_wait(running)
        await sim.close()


async def _user_id(system: System) -> str:
    (user,) = await system.services.storage.billing.users.all()
    return user.id
