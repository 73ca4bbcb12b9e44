"""The driver pages over HTTP: sign-in with phone and PIN, CSRF, throttling, top-up, pay-before-start, stop."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

import httpx
import pytest

from ems.domain.commands import CommandStatus, RemoteStart
from ems.domain.live import LiveSessionView
from ems.domain.money import Money
from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord
from ems.services.drivers import token_hash
from tests.integration.web.conftest import ADMIN, PHONE, PIN, WebEnv


async def test_signed_out_page_shows_charger_price_and_sign_in_form(web: WebEnv) -> None:
    r = await web.client.get("/c/CP-1/1")
    assert r.status_code == 200
    page = r.text
    assert "CP-1" in page and "Connector 1" in page and "Available" in page
    assert "€0.30 per kWh" in page and "€1.00 per session" in page and "Prices exclude VAT of 21%." in page
    assert ">Phone<" in page and ">PIN<" in page and ">Sign in<" in page
    assert "ems_csrf=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


async def test_unknown_charger_is_a_clear_404(web: WebEnv) -> None:
    r = await web.client.get("/c/NOPE/1")
    assert r.status_code == 404 and "Charger not found" in r.text


async def test_sign_in_sets_a_lax_httponly_session_cookie_and_shows_balance(web: WebEnv) -> None:
    r = await web.sign_in(phone="+46701234567")  # same digits, other spacing
    assert r.status_code == 303 and r.headers["location"] == "/c/CP-1/1"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("ems_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http here
    page = (await web.client.get("/c/CP-1/1")).text
    assert 'id="balance">€0.00<' in page and "Your balance is too low to start" in page
    assert 'id="start"' not in page


async def test_session_cookie_is_secure_behind_https(web: WebEnv) -> None:
    token = await web.csrf("/c/CP-1/1")
    r = await web.client.post(
        "/c/CP-1/1/sign-in",
        data={"csrf": token, "phone": PHONE, "pin": PIN},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


async def test_a_form_without_the_csrf_token_is_refused(web: WebEnv) -> None:
    await web.client.get("/c/CP-1/1")
    r = await web.client.post("/c/CP-1/1/sign-in", data={"phone": PHONE, "pin": PIN})
    assert r.status_code == 403 and "ems_session" not in r.headers.get("set-cookie", "")
    r = await web.client.post("/c/CP-1/1/sign-in", data={"csrf": "0" * 64, "phone": PHONE, "pin": PIN})
    assert r.status_code == 403


async def test_wrong_pins_are_throttled(web: WebEnv) -> None:
    for phone in ("+46 70 123 45 67", "+46701234567", "+46-70-123-4567"):  # one phone, however it is written
        r = await web.sign_in(phone=phone, pin="0000")
        assert r.status_code == 401 and "phone number or PIN is not right" in r.text
    r = await web.sign_in(pin="0000")  # the 4th failure locks out
    assert r.status_code == 401
    r = await web.sign_in()  # even the right PIN waits now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "Too many wrong PINs" in r.text


async def test_pin_is_stored_hashed_and_reset_signs_out(web: WebEnv) -> None:
    stored = await web.storage.driver_auth.pin(web.user_id)
    assert stored is not None and PIN not in stored.pin_hash and stored.pin_hash.startswith("scrypt$")
    assert (await web.sign_in()).status_code == 303
    assert "Sign out" in (await web.client.get("/me")).text
    r = await web.client.put(f"/api/v1/users/{web.user_id}/pin", json={"pin": "13579"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["pin_set"] is True
    assert ">Sign in<" in (await web.client.get("/me")).text  # the old session ended
    assert (await web.sign_in()).status_code == 401
    assert (await web.sign_in(pin="13579")).status_code == 303


async def test_a_new_phone_number_signs_in_with_the_same_pin(web: WebEnv) -> None:
    r = await web.client.patch(f"/api/v1/users/{web.user_id}", json={"phone": "+354 555 9876"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["pin_set"] is True
    assert (await web.sign_in()).status_code == 401  # the old number no longer signs in
    assert (await web.sign_in(phone="+3545559876")).status_code == 303


async def test_pin_api_validates(web: WebEnv) -> None:
    r = await web.client.put(f"/api/v1/users/{web.user_id}/pin", json={"pin": "12"}, headers=ADMIN)
    assert r.status_code == 422
    r = await web.client.post("/api/v1/users", json={"name": "No phone", "pin": "1234"}, headers=ADMIN)
    assert r.status_code == 422 and "phone" in r.text
    r = await web.client.put("/api/v1/users/nobody/pin", json={"pin": "1234"}, headers=ADMIN)
    assert r.status_code == 404


async def test_top_up_with_the_test_provider_then_start_holds_before_remote_start(web: WebEnv) -> None:
    await web.sign_in()
    token = await web.csrf("/c/CP-1/1")
    page = (await web.client.get("/c/CP-1/1")).text
    assert "Test payment" in page
    r = await web.client.post("/c/CP-1/1/top-up", data={"csrf": token, "amount": "20"})
    assert r.status_code == 303 and r.headers["location"].startswith("/pay/test/")
    pay_page = await web.client.get(r.headers["location"])
    assert "Test payment" in pay_page.text and "no real money" in pay_page.text
    r = await web.client.post(r.headers["location"], data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/c/CP-1/1"
    assert await web.balance() == Decimal("20.00")
    page = (await web.client.get("/c/CP-1/1")).text
    assert 'id="balance">€20.00<' in page and 'id="start"' in page
    attempt = re.search(r'name="attempt" value="([^"]+)"', page)
    assert attempt
    r = await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": attempt.group(1)})
    assert r.status_code == 303 and r.headers["location"].startswith("/charge/")
    ((command, held_minor),) = web.control.sent
    assert isinstance(command, RemoteStart) and command.evse_id == 1
    assert held_minor == 2000  # the whole 20.00 was held before RemoteStart left
    charge_page = await web.client.get(r.headers["location"])
    assert "Starting: waiting for the charger" in charge_page.text and 'id="stop"' in charge_page.text
    live = (await web.client.get(r.headers["location"] + "/live.json")).json()
    assert live["state"] == "pending" and live["done"] is False
    # the charger page now leads to the running charge
    assert (await web.client.get("/c/CP-1/1")).headers["location"] == r.headers["location"]
    # stop before the session began: the hold is released, nothing charged
    r2 = await web.client.post(r.headers["location"] + "/stop", data={"csrf": token})
    assert r2.status_code == 303
    assert await web.balance() == Decimal("20.00")


async def test_refused_start_releases_the_hold_and_says_so(web: WebEnv) -> None:
    await web.billing.wallet.top_up(
        web.account_id, __import__("ems.domain.money").domain.money.Money.of("10.00", "EUR")
    )
    web.control.answer = CommandStatus.REJECTED
    await web.sign_in()
    token = await web.csrf("/c/CP-1/1")
    r = await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": "a1"})
    assert r.status_code == 200 and "The charger did not start (the charger refused). Nothing was charged." in r.text
    assert await web.balance() == Decimal("10.00")


async def test_offline_charger_says_what_to_do(web: WebEnv) -> None:
    web.control.online = False
    page = (await web.client.get("/c/CP-1/1")).text
    assert "Offline" in page and "Please try another charger" in page


async def test_charges_of_other_drivers_are_not_visible(web: WebEnv) -> None:
    await web.sign_in()
    assert (await web.client.get("/charge/doesnotexist")).status_code == 404
    assert (await web.client.get("/me/sessions/doesnotexist")).status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [("sv-SE,sv;q=0.9,en;q=0.5", "sv"), ("gu", "gu"), ("te-IN", "te"), ("is", "is"), ("de-DE", "en")],
)
async def test_language_from_accept_language(web: WebEnv, header: str, expected: str) -> None:
    page = (await web.client.get("/c/CP-1/1", headers={"Accept-Language": header})).text
    assert f'<html lang="{expected}">' in page


async def test_language_switch_sticks_in_a_cookie(web: WebEnv) -> None:
    r = await web.client.get("/c/CP-1/1?lang=is")
    assert '<html lang="is">' in r.text and "ems_lang=is" in r.headers["set-cookie"]
    assert '<html lang="is">' in (await web.client.get("/c/CP-1/1")).text


@pytest.mark.parametrize(
    ("status", "error_code", "label", "advice"),
    [
        (ConnectorStatus.FAULTED, "GroundFailure", "Fault (GroundFailure)", "Please use another charger."),
        (ConnectorStatus.CHARGING, None, "In use", "Someone else is using this charger."),
        (ConnectorStatus.UNAVAILABLE, None, "Out of service", "Please use another charger."),
    ],
)
async def test_faulted_occupied_and_unavailable_chargers_cannot_start(
    web: WebEnv, status: ConnectorStatus, error_code: str | None, label: str, advice: str
) -> None:
    await web.billing.wallet.top_up(web.account_id, Money.of("20.00", "EUR"))
    record = ConnectorStatusRecord("CP-1", 1, 1, status, web.clock.now(), error_code=error_code)
    await web.storage.stations.record_status(record)
    await web.sign_in()
    page = (await web.client.get("/c/CP-1/1")).text
    assert label in page and advice in page and 'id="start"' not in page
    token = await web.csrf("/c/CP-1/1")
    r = await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": "x"})
    assert r.status_code == 200 and advice in r.text and web.control.sent == []
    assert "Available" in (await web.client.get("/c/CP-1/2")).text  # the other connector is free


async def test_my_sessions_lists_the_drivers_cards_and_not_others(web: WebEnv) -> None:
    body = {"uid": "CARD-ADA", "mode": "commercial", "account_id": web.account_id, "user_id": web.user_id}
    assert (await web.client.post("/api/v1/cards", json=body, headers=ADMIN)).status_code == 201
    other = {"uid": "CARD-BOB", "mode": "personal"}
    assert (await web.client.post("/api/v1/cards", json=other, headers=ADMIN)).status_code == 201
    assert ">Sign in<" in (await web.client.get("/me")).text
    await web.sign_in()
    page = (await web.client.get("/me")).text
    assert "My cards" in page and "CARD-ADA" in page and "0 sessions" in page and "CARD-BOB" not in page
    assert "No sessions yet." in page


@dataclass
class PlanView:
    """The controller's live view of one session (the ``SiteMonitor`` port), as the controller would answer."""

    view: LiveSessionView

    def live_sessions(self, site_id: str) -> list[LiveSessionView]:
        return [self.view] if site_id == "depot" else []

    def plan(self, site_id: str) -> None:
        return None

    def evse_limits(self, site_id: str) -> list[object]:
        return []


async def test_live_json_follows_the_session_with_cost_and_the_plans_expected_finish(web: WebEnv) -> None:
    await web.billing.wallet.top_up(web.account_id, Money.of("20.00", "EUR"))
    await web.sign_in()
    token = await web.csrf("/c/CP-1/1")
    r = await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": "live-1"})
    charge_url = r.headers["location"]
    charge_id = charge_url.rsplit("/", 1)[1]
    started = web.clock.now()
    session = ChargingSession("S-1", "CP-1", 1, 1, "77", started, id_tag="APP", meter_start_wh=1_000.0)
    await web.storage.sessions.add(session)
    await web.billing.service.billing.ledger.link_hold(charge_id, "S-1")
    web.clock.advance(600)
    await web.storage.samples.add_many(
        [MeterSample("CP-1", 1, web.clock.now(), Measurand.ENERGY_IMPORT_REGISTER, 3_500.0, session_id="S-1")]
    )
    await web.storage.sessions.update(replace(session, last_power_w=15_000.0))
    view = LiveSessionView("S-1", "CP-1", 1, started, 15_000.0, 2_500.0, None, 12_500.0, 10_000.0)
    web.services.monitor = PlanView(view)  # type: ignore[assignment]
    live = (await web.client.get(charge_url + "/live.json", headers={"Accept-Language": "en-GB"})).json()
    # 2.5 kWh x 0.30 + 1.00 = 1.75 net, VAT 21% = 0.3675 -> 0.37, total 2.12
    assert (live["state"], live["energy"], live["power"], live["cost"]) == ("charging", "2.50 kWh", "15.0 kW", "€2.12")
    assert live["elapsed"] == "10 min" and live["done"] is False
    assert live["finish"] == "17:10"  # 10 kWh left at 10 kW planned: one hour after 15:10 UTC, in Stockholm (CET)


async def test_status_json_follows_the_connector(web: WebEnv) -> None:
    assert (await web.client.get("/c/CP-1/1/status.json")).json() == {
        "label": "Available",
        "tone": "ok",
        "message": None,
        "can_start": True,
    }
    await web.storage.stations.record_status(
        ConnectorStatusRecord("CP-1", 1, 1, ConnectorStatus.FAULTED, web.clock.now(), error_code="OverVoltage")
    )
    status = (await web.client.get("/c/CP-1/1/status.json?lang=sv")).json()
    assert (status["label"], status["can_start"], status["tone"]) == ("Fel (OverVoltage)", False, "bad")
    assert (await web.client.get("/c/NOPE/1/status.json")).status_code == 404


async def test_a_session_the_plan_gives_no_power_says_it_waits_for_power(web: WebEnv) -> None:
    await web.billing.wallet.top_up(web.account_id, Money.of("20.00", "EUR"))
    await web.sign_in()
    token = await web.csrf("/c/CP-1/1")
    charge_url = (await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": "p0"})).headers["location"]
    session = ChargingSession("S-0", "CP-1", 1, 1, "78", web.clock.now(), id_tag="APP")
    await web.storage.sessions.add(session)
    await web.billing.service.billing.ledger.link_hold(charge_url.rsplit("/", 1)[1], "S-0")
    view = LiveSessionView("S-0", "CP-1", 1, web.clock.now(), 0.0, 0.0, None, None, 0.0, ("site",))
    web.services.monitor = PlanView(view)  # type: ignore[assignment]
    live = (await web.client.get(charge_url + "/live.json")).json()
    assert live["label"] == "Waiting for power: the site is at its limit" and live["finish"] is None


async def test_one_phone_is_throttled_whatever_address_guesses_it(web: WebEnv) -> None:
    for n in range(4):  # four sources, one phone: the phone's own count locks it
        transport = httpx.ASGITransport(app=web.app, client=(f"10.0.0.{n}", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ems.test") as other:
            page = await other.get("/c/CP-1/1")
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert token
            r = await other.post("/c/CP-1/1/sign-in", data={"csrf": token.group(1), "phone": PHONE, "pin": "9999"})
            assert r.status_code == 401
    r = await web.sign_in()  # from yet another address, with the right PIN: the phone waits
    assert r.status_code == 429


async def test_another_driver_cannot_follow_or_stop_a_charge(web: WebEnv) -> None:
    await web.billing.wallet.top_up(web.account_id, Money.of("20.00", "EUR"))
    await web.sign_in()
    token = await web.csrf("/c/CP-1/1")
    charge_url = (await web.client.post("/c/CP-1/1/start", data={"csrf": token, "attempt": "own"})).headers["location"]
    r = await web.client.post(
        "/api/v1/users", json={"name": "Bob", "phone": "+354 600 0000", "pin": "1111"}, headers=ADMIN
    )
    assert r.status_code == 201
    web.client.cookies.delete("ems_session")
    assert (await web.sign_in(phone="+354 600 0000", pin="1111")).status_code == 303  # the same browser, now Bob
    assert (await web.client.get(charge_url)).status_code == 404
    assert (await web.client.get(charge_url + "/live.json")).status_code == 404
    token = await web.csrf("/c/CP-1/1")
    assert (await web.client.post(charge_url + "/stop", data={"csrf": token})).status_code == 404
    assert (await web.billing.charges.state(charge_url.rsplit("/", 1)[1])).state == "pending"


async def test_a_session_expires_after_30_days_and_is_purged(web: WebEnv) -> None:
    assert (await web.sign_in()).status_code == 303
    token = web.client.cookies["ems_session"]
    assert "Sign out" in (await web.client.get("/me")).text
    web.clock.advance(30 * 86_400)
    assert ">Sign in<" in (await web.client.get("/me")).text
    web.client.cookies.delete("ems_session")
    assert (await web.sign_in()).status_code == 303  # a new sign-in purges the expired session
    assert await web.storage.driver_auth.session(token_hash(token)) is None
