"""Smoke test of every console page in headless Chromium, at desktop width and on a 390 px phone,
against a running ems with simulated stations: sign in, each page shows its live content, nothing
overflows the phone's width, a station command comes back with the station's typed answer.

Screenshots: ``EMS_CONSOLE_SCREENSHOTS=docs python -m pytest tests/e2e/console`` keeps them in docs/.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from .conftest import CHROMIUM, EMAIL, PASSWORD, RunningEms

pytestmark = pytest.mark.slow

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def _fits(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width + 1, f"{page.url} is {scroll} px wide on a {width} px screen"


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_every_console_page(ems_demo: RunningEms, shots: Path, size: str) -> None:
    viewport = VIEWPORTS[size]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
            page.set_default_timeout(15_000)
            page.goto(f"{ems_demo.url}/dashboard")  # the old address leads to the console's sign-in
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
            if size == "phone":
                page.screenshot(path=str(shots / "console-sign-in-phone.png"), full_page=True)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            # stations: every simulated station, online, with connector status and firmware
            expect(page.get_by_role("heading", name="Stations", exact=True)).to_be_visible()
            cards = page.locator("article.station")
            expect(cards).to_have_count(4)
            expect(cards.first).to_contain_text("online")
            expect(cards.first.locator(".status").first).to_be_visible()
            expect(page.locator("text=Firmware").first).to_be_visible()
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-stations-{size}.png"), full_page=True)

            # site load: two charts with axes in A and kW, plan status with the last attempt
            page.get_by_role("link", name="Site load").click()
            expect(page.get_by_role("heading", name="Plan status")).to_be_visible()
            expect(page.locator("svg.chart")).to_have_count(2)
            expect(page.locator("svg.chart .axis-label", has_text=re.compile(r"^A$"))).to_have_count(1)
            expect(page.locator("svg.chart .axis-label", has_text="kW")).to_have_count(1)
            expect(page.locator("section.plan")).to_contain_text("last attempt")
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-load-{size}.png"), full_page=True)

            # sessions: the demo's cars have charged
            page.get_by_role("link", name="Sessions").click()
            expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
            expect(page.locator("tbody tr").first).to_contain_text("kWh")
            page.get_by_label("Day").fill("1999-01-01")
            page.get_by_role("button", name="Filter").click()
            expect(page.locator("tbody")).to_contain_text("No sessions match")
            _fits(page, viewport["width"])
            page.get_by_label("Day").fill("")
            page.get_by_role("button", name="Filter").click()
            expect(page.locator("tbody tr").first).to_contain_text("kWh")
            page.screenshot(path=str(shots / f"console-sessions-{size}.png"), full_page=False)

            # users: create one, errors by field first
            page.get_by_role("link", name="Users").click()
            page.get_by_role("button", name="Create user").click()
            expect(page.locator("#e-name")).to_be_visible()
            expect(page.get_by_label("Name")).to_be_focused()  # the keyboard lands on the field to fix
            name = f"E2E {size}"
            page.get_by_label("Name").fill(name)
            page.get_by_role("button", name="Create user").click()
            expect(page.get_by_role("status")).to_contain_text(f"User {name} created")
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-users-{size}.png"), full_page=True)

            # top up that user
            page.get_by_role("link", name=name).click()
            page.get_by_label(re.compile("^Amount")).fill("12.50")
            page.get_by_role("button", name="Top up").click()
            expect(page.get_by_role("status")).to_contain_text("balance 12.50")
            page.get_by_role("link", name="Top-ups").click()
            expect(page.locator("tbody")).to_contain_text(name)

            # cards: block one of the demo's cards, then unblock it
            page.get_by_role("link", name="Cards").click()
            row = page.locator("tbody tr").first
            uid = row.locator("td").first.inner_text()
            row.get_by_role("button", name=re.compile("^Block")).click()
            expect(page.get_by_role("status")).to_contain_text(f"Card {uid} is now blocked")
            page.locator("tbody tr").first.get_by_role("button", name=re.compile("^Unblock")).click()
            expect(page.get_by_role("status")).to_contain_text(f"Card {uid} is now accepted")
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-cards-{size}.png"), full_page=False)

            # tariffs: the demo's tariff, edited with a bad then a good VAT
            page.get_by_role("link", name="Tariffs").click()
            page.locator("tbody a").first.click()
            vat = page.get_by_label("VAT (%)")
            before = vat.input_value()
            vat.fill("150")
            page.get_by_role("button", name="Save tariff").click()
            expect(page.locator("#e-vat_percent")).to_contain_text("between 0 and 100")
            page.get_by_label("VAT (%)").fill(before)
            page.get_by_role("button", name="Save tariff").click()
            expect(page.get_by_role("status")).to_contain_text("Tariff saved")
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-tariff-{size}.png"), full_page=True)

            # a station's page: unlock a connector, the station's typed answer is shown
            page.get_by_role("link", name="Stations").click()
            page.locator("article.station h2 a").first.click()
            expect(page.get_by_role("heading", name="Commands")).to_be_visible()
            page.get_by_role("button", name="Unlock").click()
            expect(page.locator("section.result")).to_contain_text(
                re.compile("Result of unlock-connector: (ACCEPTED|REJECTED|NOT_SUPPORTED)")
            )
            _fits(page, viewport["width"])
            page.screenshot(path=str(shots / f"console-station-{size}.png"), full_page=True)
        finally:
            browser.close()
