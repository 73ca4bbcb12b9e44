"""The operator's console end to end in-process: sign-in, CSRF, roles, every page and every edit."""

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from ems.domain.access import Role
from ems.domain.capacity import SiteLoadReading
from ems.domain.card import Card, CardMode, CardStatus
from ems.domain.commands import UnlockConnector
from ems.domain.live import EvseLimitView, LiveSessionView, SitePlanView
from ems.domain.session import ChargingSession
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, OcppVersion, Station
from ems.domain.tariff import Tariff
from ems.domain.units import Phase
from ems.ports.stores import Storage
from ems.services.admin import create_api_key
from ems.services.operators import check_sign_in, create_operator

from .conftest import ADMIN_KEY, PASSWORD, T0, Console, make_console, token


async def seed_station(c: Console) -> None:
    storage = c.services.storage
    await storage.stations.add(
        Station(
            id="CP001",
            firmware_version="4.2.1",
            vendor="Acme",
            model="Wallbox",
            ocpp_version=OcppVersion.V16,
            site_id="depot",
            registered_at=T0,
            last_seen_at=T0 - timedelta(minutes=3),
            online=True,
        )
    )
    await storage.stations.record_status(
        ConnectorStatusRecord("CP001", 1, 1, ConnectorStatus.CHARGING, T0 - timedelta(minutes=10))
    )
    await storage.stations.record_status(
        ConnectorStatusRecord("CP001", 2, 1, ConnectorStatus.FAULTED, T0 - timedelta(minutes=5), "GroundFailure")
    )


# ---------------------------------------------------------------- sign-in


async def test_pages_need_sign_in_and_come_back_after_it(console: Console) -> None:
    r = await console.client.get("/console/sessions?day=2026-07-01")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in?next=%2Fconsole%2Fsessions")
    form = await console.client.get(r.headers["location"])
    assert 'value="/console/sessions?day=2026-07-01"' in form.text
    r = await console.client.post(
        "/console/sign-in",
        data={
            "csrf": token(form.text),
            "email": "ADMIN@example.org ",
            "password": PASSWORD,
            "next": "/console/sessions?day=2026-07-01",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/sessions?day=2026-07-01"
    cookie = r.headers["set-cookie"]
    assert "ems_console=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    page = await console.client.get("/console/sessions")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert (await console.client.get("/console/sessions")).status_code == 200


async def test_wrong_password_is_refused_on_the_form(console: Console) -> None:
    r = await console.sign_in(password="not the password")
    assert r.status_code == 401 and "Wrong email or password" in r.text
    assert (await console.client.get("/console/stations")).status_code == 303
    r = await console.sign_in(email="nobody@example.org")
    assert r.status_code == 401 and "Wrong email or password" in r.text


async def test_empty_fields_are_named_one_by_one(console: Console) -> None:
    form = await console.client.get("/console/sign-in")
    r = await console.client.post("/console/sign-in", data={"csrf": token(form.text), "email": "", "password": ""})
    assert r.status_code == 422
    assert 'id="e-email"' in r.text and 'id="e-password"' in r.text and 'aria-invalid="true"' in r.text


async def test_sign_in_without_its_csrf_token_is_refused(console: Console) -> None:
    await console.client.get("/console/sign-in")
    r = await console.client.post(
        "/console/sign-in", data={"csrf": "forged", "email": "admin@example.org", "password": PASSWORD}
    )
    assert r.status_code == 403
    assert (await console.client.get("/console/stations")).status_code == 303


async def test_failed_sign_ins_are_throttled_even_for_the_right_password(console: Console) -> None:
    for _ in range(6):
        await console.sign_in(password="wrong password!")
    r = await console.sign_in()
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert int(r.headers["retry-after"]) >= 1
    console.clock.advance(2.5)
    assert (await console.sign_in()).status_code == 303


async def test_secure_cookie_over_tls(sqlite_storage: Storage) -> None:
    async with make_console(sqlite_storage, base_url="https://ems.test") as c:
        r = await c.sign_in()
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


async def test_sign_out_ends_the_session(console: Console) -> None:
    await console.sign_in()
    csrf = await console.csrf("/console/stations")
    r = await console.client.post("/console/sign-out", data={"csrf": csrf})
    assert r.status_code == 303
    assert (await console.client.get("/console/stations")).status_code == 303


async def test_operator_accounts_on_both_back_ends(storage: Storage) -> None:
    from ems.clock import FakeClock
    from ems.errors import Conflict, InvalidInput

    clock = FakeClock(T0)
    account = await create_operator(storage.operators, clock, "Ops@Example.org", PASSWORD, Role.OPERATOR)
    assert account.email == "ops@example.org" and account.password_hash.startswith("scrypt$")
    assert PASSWORD not in account.password_hash
    assert (await check_sign_in(storage.operators, "ops@example.org", PASSWORD)) == account
    assert await check_sign_in(storage.operators, "ops@example.org", "wrong password") is None
    with pytest.raises(Conflict):
        await create_operator(storage.operators, clock, "OPS@example.org", PASSWORD, Role.ADMIN)
    with pytest.raises(InvalidInput) as bad:
        await create_operator(storage.operators, clock, "not-an-email", "short", Role.ADMIN)
    assert [p.split(":")[0] for p in bad.value.problems] == ["email", "password"]
    assert [a.email for a in await storage.operators.all()] == ["ops@example.org"]


# ---------------------------------------------------------------- API keys and roles


async def test_machines_use_an_api_key_header(console: Console) -> None:
    await seed_station(console)
    r = await console.client.get("/console/stations", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and "CP001" in r.text
    r = await console.client.get("/console/stations", headers={"Authorization": "Bearer wrong-key"})
    assert r.status_code == 401
    key, _ = await create_api_key(console.services.storage.api_keys, console.clock, "d2", Role.DRIVER)
    r = await console.client.get("/console/stations", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and "analyst" in r.text
    # an API-key request needs no CSRF token (a browser never adds the header by itself)
    r = await console.client.post(
        "/console/users",
        data={"name": "Robot Made", "currency": "EUR"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200 and "User Robot Made created" in r.text


async def test_the_analyst_role_reads_but_cannot_edit(console: Console) -> None:
    await seed_station(console)
    assert (await console.sign_in(email="analyst@example.org")).status_code == 303
    page = await console.client.get("/console/stations/CP001")
    assert page.status_code == 200 and "can view but not send commands" in page.text
    assert "Create a user" not in (await console.client.get("/console/users")).text
    csrf = token(page.text)  # the sign-out form's
    r = await console.client.post("/console/users", data={"csrf": csrf, "name": "Eve", "currency": "EUR"})
    assert r.status_code == 403 and "operator role" in r.text
    r = await console.client.post(
        "/console/stations/CP001/commands",
        data={"csrf": csrf, "command": "unlock-connector", "evse_id": "1"},
    )
    assert r.status_code == 403
    assert console.control.sent == []
    assert await console.services.billing.service.billing.users.all() == []


async def test_every_edit_needs_the_session_csrf_token(console: Console) -> None:
    await console.sign_in()
    for path, data in (
        ("/console/users", {"name": "Mallory", "currency": "EUR"}),
        ("/console/stations/CP001/commands", {"command": "reset", "kind": "Hard"}),
    ):
        r = await console.client.post(path, data={**data, "csrf": "forged"})
        assert r.status_code == 403 and "expired" in r.text
    assert console.control.sent == []
    assert await console.services.billing.service.billing.users.all() == []


# ---------------------------------------------------------------- pages


async def test_stations_page_shows_status_faults_firmware_and_last_seen(console: Console) -> None:
    await seed_station(console)
    await console.sign_in()
    r = await console.client.get("/console/stations")
    assert r.status_code == 200
    text = r.text
    assert "CP001" in text and "4.2.1" in text and "online" in text
    assert "Charging" in text and "Faulted" in text and "GroundFailure" in text
    # last seen in the site's zone (Europe/Amsterdam, summer: UTC+2): 09:57 UTC is 11:57 CEST
    assert "2026-07-01 11:57 CEST" in text and "3 min ago" in text


async def test_load_page_draws_charts_with_axes_and_site_times(console: Console) -> None:
    await console.sign_in()
    r = await console.client.get("/console/load")
    assert r.status_code == 200
    assert r.text.count("<svg") == 2
    assert ">A</text>" in r.text and ">kW</text>" in r.text
    assert "Europe/Amsterdam" in r.text and "No plan yet" in r.text
    hours = re.findall(r'class="tick"[^>]*>(\d\d:00)</text>', r.text)
    assert hours and "12:00" in hours  # 10:00 UTC is noon in Amsterdam; the axis is local
    # the static phase limit of the example site (220 A) is drawn: the y axis reaches it
    assert ">240</text>" in r.text or ">250</text>" in r.text


async def test_sessions_filter_by_station_card_user_and_day(console: Console) -> None:
    await seed_station(console)
    storage = console.services.storage
    user, account = await console.services.billing.wallet.create_user("Ann", currency="EUR")
    await storage.cards.add(Card(uid="ANN-1", user_id=user.id, account_id=account.id, mode=CardMode.COMMERCIAL))
    for i, (tag, day) in enumerate((("ANN-1", 0), ("OTHER", 0), ("ANN-1", 1))):
        await storage.sessions.add(
            ChargingSession(
                id=f"s{i}",
                station_id="CP001",
                evse_id=1,
                connector_id=1,
                transaction_id=str(i),
                started_at=T0 - timedelta(days=day),
                id_tag=tag,
                energy_wh=1000.0 * (i + 1),
            )
        )
    await console.sign_in()
    everything = await console.client.get("/console/sessions")
    assert everything.text.count("<tr><td>") == 3
    by_card = await console.client.get("/console/sessions", params={"card": "OTHER"})
    assert by_card.text.count("<tr><td>") == 1 and "2.00 kWh" in by_card.text
    by_user = await console.client.get("/console/sessions", params={"user": user.id})
    assert by_user.text.count("<tr><td>") == 2 and "OTHER" not in by_user.text.split("<tbody>")[1]
    by_day = await console.client.get("/console/sessions", params={"day": "2026-06-30"})
    assert by_day.text.count("<tr><td>") == 1 and "3.00 kWh" in by_day.text
    bad = await console.client.get("/console/sessions", params={"day": "yesterday"})
    assert 'id="e-day"' in bad.text


async def test_dashboard_now_leads_to_the_console(console: Console) -> None:
    r = await console.client.get("/dashboard")
    assert r.status_code == 301 and r.headers["location"] == "/console"
    r = await console.client.get("/", follow_redirects=True)
    assert r.status_code == 200 and "Sign in" in r.text and 'name="password"' in r.text


async def test_unknown_things_are_404_pages(console: Console) -> None:
    await console.sign_in()
    for path in ("/console/stations/NOPE", "/console/users/nobody", "/console/tariffs/none"):
        r = await console.client.get(path)
        assert r.status_code == 404 and "Not found" in r.text


# ---------------------------------------------------------------- edits


async def test_create_user_shows_field_errors_then_creates(console: Console) -> None:
    await console.sign_in()
    csrf = await console.csrf("/console/users")
    r = await console.client.post(
        "/console/users", data={"csrf": csrf, "name": " ", "currency": "XXQ", "email": "not mail"}
    )
    assert r.status_code == 422
    for name in ("name", "email"):
        assert f'id="e-{name}"' in r.text
    assert 'value="not mail"' in r.text  # what was typed stays in the form
    r = await console.client.post("/console/users", data={"csrf": csrf, "name": " ", "currency": "XXQ"})
    assert 'id="e-name"' in r.text and 'id="e-currency"' in r.text
    r = await console.client.post(
        "/console/users", data={"csrf": csrf, "name": "Ann Driver", "currency": "EUR", "email": "ann@example.org"}
    )
    assert r.status_code == 200 and "User Ann Driver created" in r.text
    users = await console.services.billing.service.billing.users.all()
    assert [(u.name, u.email) for u in users] == [("Ann Driver", "ann@example.org")]


async def test_top_up_once_with_errors_by_field(console: Console) -> None:
    user, account = await console.services.billing.wallet.create_user("Ann", currency="EUR")
    await console.sign_in()
    page = await console.client.get(f"/console/users/{user.id}")
    csrf = token(page.text)
    idem = re.search(r'name="idempotency" value="([^"]+)"', page.text)
    assert idem is not None
    r = await console.client.post(f"/console/users/{user.id}/top-up", data={"csrf": csrf, "amount": "lots"})
    assert r.status_code == 422 and 'id="e-amount"' in r.text
    r = await console.client.post(f"/console/users/{user.id}/top-up", data={"csrf": csrf, "amount": "-5"})
    assert r.status_code == 422 and "positive" in r.text
    form = {"csrf": csrf, "amount": "20.00", "reference": "desk 1", "idempotency": idem.group(1)}
    r = await console.client.post(f"/console/users/{user.id}/top-up", data=form)
    assert r.status_code == 200 and "balance 20.00" in r.text
    r = await console.client.post(f"/console/users/{user.id}/top-up", data=form)  # double submit
    assert "already applied" in r.text
    balance = await console.services.storage.billing.ledger.balance(account.id)
    assert balance.available_minor == 2000
    listing = await console.client.get("/console/top-ups")
    assert "20.00 EUR" in listing.text and "desk 1" in listing.text and "Ann" in listing.text


async def test_block_and_unblock_a_card(console: Console) -> None:
    await console.services.storage.cards.add(Card(uid="CARD-7", label="van 7"))
    await console.sign_in()
    csrf = await console.csrf("/console/cards")
    r = await console.client.post("/console/cards/CARD-7/status", data={"csrf": csrf, "status": "blocked"})
    assert r.status_code == 200 and "Card CARD-7 is now blocked" in r.text
    assert "Unblock" in r.text
    card = await console.services.storage.cards.get("CARD-7")
    assert card is not None and card.status is CardStatus.BLOCKED
    r = await console.client.post("/console/cards/CARD-7/status", data={"csrf": csrf, "status": "Maybe"})
    assert r.status_code == 422
    await console.client.post("/console/cards/CARD-7/status", data={"csrf": csrf, "status": "accepted"})
    card = await console.services.storage.cards.get("CARD-7")
    assert card is not None and card.status is CardStatus.ACCEPTED


async def test_edit_a_tariff_field_by_field(console: Console) -> None:
    tariffs = console.services.billing.service.billing.tariffs
    await tariffs.add(Tariff(id="t1", name="Standard", currency="EUR", energy_per_kwh=Decimal("0.30")))
    await console.sign_in()
    page = await console.client.get("/console/tariffs")
    assert "Standard" in page.text and "0.30" in page.text
    csrf = await console.csrf("/console/tariffs/t1")
    form = {
        "csrf": csrf,
        "name": "Standard",
        "currency": "EUR",
        "energy_per_kwh": "abc",
        "time_per_minute": "0",
        "parking_per_minute": "0",
        "session_fee": "0.50",
        "idle_per_minute": "0.10",
        "idle_grace_minutes": "15",
        "vat_percent": "150",
        "description": "",
    }
    r = await console.client.post("/console/tariffs/t1", data=form)
    assert r.status_code == 422 and 'id="e-energy_per_kwh"' in r.text
    r = await console.client.post("/console/tariffs/t1", data={**form, "energy_per_kwh": "0.35"})
    assert r.status_code == 422 and 'id="e-vat_percent"' in r.text and "between 0 and 100" in r.text
    r = await console.client.post("/console/tariffs/t1", data={**form, "energy_per_kwh": "0.35", "vat_percent": "21"})
    assert r.status_code == 200 and "Tariff saved" in r.text
    saved = await tariffs.get("t1")
    assert saved is not None
    assert (saved.energy_per_kwh, saved.vat_percent, saved.idle_grace_minutes) == (Decimal("0.35"), Decimal(21), 15)


async def test_station_commands_show_typed_results_and_field_errors(console: Console) -> None:
    await seed_station(console)
    await console.sign_in()
    csrf = await console.csrf("/console/stations/CP001")
    r = await console.client.post(
        "/console/stations/CP001/commands", data={"csrf": csrf, "command": "remote-start", "id_tag": "", "evse_id": "x"}
    )
    assert r.status_code == 422 and 'id="e-id_tag"' in r.text and 'id="e-evse_id"' in r.text
    assert console.control.sent == []
    r = await console.client.post(
        "/console/stations/CP001/commands",
        data={"csrf": csrf, "command": "unlock-connector", "evse_id": "2", "connector_id": "1"},
    )
    assert r.status_code == 200
    assert "Result of unlock-connector: ACCEPTED" in r.text and "Unlocked" in r.text
    assert console.control.sent == [("CP001", UnlockConnector(evse_id=2, connector_id=1))]
    for data in (
        {"command": "reset", "kind": "Hard"},
        {"command": "change-availability", "evse_id": "1", "availability": "Inoperative"},
        {"command": "remote-start", "id_tag": "ANN-1", "evse_id": "1"},
        {"command": "remote-stop", "transaction_id": "42"},
    ):
        r = await console.client.post("/console/stations/CP001/commands", data={**data, "csrf": csrf})
        assert r.status_code == 200 and f"Result of {data['command']}: ACCEPTED" in r.text
    assert [c.name for _, c in console.control.sent] == [
        "unlock-connector",
        "reset",
        "change-availability",
        "remote-start",
        "remote-stop",
    ]


async def test_card_model_unchanged_by_console_listing(console: Console) -> None:
    """The cards page lists a card with its user, mode and expiry without touching it."""
    user, account = await console.services.billing.wallet.create_user("Bo", currency="EUR")
    card = Card(
        uid="BO-1", user_id=user.id, account_id=account.id, mode=CardMode.COMMERCIAL, expires_at=T0 + timedelta(days=30)
    )
    await console.services.storage.cards.add(card)
    await console.sign_in()
    r = await console.client.get("/console/cards")
    assert "BO-1" in r.text and "Bo" in r.text and "commercial" in r.text and "2026-07-31" in r.text
    assert await console.services.storage.cards.get("BO-1") == replace(card)


async def test_register_a_card_personal_or_on_a_users_account(console: Console) -> None:
    user, account = await console.services.billing.wallet.create_user("Cy", currency="EUR")
    await console.sign_in()
    csrf = await console.csrf("/console/cards")
    r = await console.client.post("/console/cards", data={"csrf": csrf, "uid": "bad uid!", "user_id": "ghost"})
    assert r.status_code == 422 and 'id="e-uid"' in r.text and 'id="e-user_id"' in r.text
    assert 'value="bad uid!"' in r.text
    r = await console.client.post("/console/cards", data={"csrf": csrf, "uid": "CY-1", "user_id": user.id})
    assert r.status_code == 200 and "Card CY-1 registered (prepaid" in r.text
    card = await console.services.storage.cards.get("CY-1")
    assert card is not None
    assert (card.mode, card.account_id, card.user_id) == (CardMode.COMMERCIAL, account.id, user.id)
    r = await console.client.post("/console/cards", data={"csrf": csrf, "uid": "GUEST-1", "label": "spare"})
    assert r.status_code == 200 and "personal" in r.text
    guest = await console.services.storage.cards.get("GUEST-1")
    assert guest is not None and guest.mode is CardMode.PERSONAL and guest.account_id is None
    r = await console.client.post("/console/cards", data={"csrf": csrf, "uid": "CY-1"})
    assert r.status_code == 422 and "already exists" in r.text


async def test_stations_show_measured_draw_against_the_accepted_limit(console: Console) -> None:
    await seed_station(console)
    console.monitor.limits = [
        EvseLimitView("CP001", 1, True, "7", accepted_current_a=16.0, accepted_power_w=11_040.0, certain=True),
        EvseLimitView("CP001", 2, True, None, accepted_current_a=6.0, accepted_power_w=4_140.0, certain=False),
    ]
    console.monitor.sessions = [
        LiveSessionView(
            "s1",
            "CP001",
            1,
            T0,
            power_w=7_400.0,
            delivered_wh=1000.0,
            departure_at=None,
            energy_requested_wh=None,
            planned_power_w=11_040.0,
        )
    ]
    await console.sign_in()
    r = await console.client.get("/console/stations")
    assert "7.4 kW / 11.0 kW" in r.text and "(16.0 A)" in r.text
    assert '<meter min="0" max="11040.0" value="7400.0"' in r.text
    assert "6.0 A, unconfirmed" in r.text  # a profile still unanswered: the higher limit, flagged


async def test_plan_status_is_the_last_attempt_with_its_error_and_age(console: Console) -> None:
    console.monitor.plan_view = SitePlanView(
        site_id="depot",
        planned_at=T0 - timedelta(minutes=30),
        status="FAILED",
        algorithm="lp",
        solve_s=0.02,
        start=T0 - timedelta(minutes=30),
        slot_s=900,
        site_power_w=(20_000.0, 15_000.0, 10_000.0),
        sessions=3,
        fully_served=1,
        unmet_wh=5_000.0,
        profiles_sent=4,
        profiles_rejected=1,
        attempted_at=T0 - timedelta(minutes=2),
        error="solver time limit reached",
    )
    console.monitor.load = SiteLoadReading(
        phase_power_w={Phase.L1: 3000.0, Phase.L2: 3000.0, Phase.L3: 3000.0},
        phase_current_a={Phase.L2: 13.0, Phase.L1: 13.0, Phase.L3: 13.0},
        active_sessions=2,
        measured_at=T0,
    )
    await console.sign_in()
    r = await console.client.get("/console/load")
    assert "FAILED" in r.text and "OPTIMAL" not in r.text
    assert "Last re-plan failed: solver time limit reached" in r.text
    assert "2 min ago" in r.text and "2026-07-01 11:58 CEST" in r.text  # the attempt, in the site's zone
    assert "The plan in force is from 2026-07-01 11:30 CEST" in r.text
    assert "9.0 kW" in r.text and r.text.index(">L1<") < r.text.index(">L2<") < r.text.index(">L3<")
    assert "plan ahead" in r.text  # the plan's remaining slots are drawn
