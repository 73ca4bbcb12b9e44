"""The analytics endpoints (issue 14), answered from the rollups, on both back ends."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.billing.pricing import price_session
from ems.config import Settings
from ems.domain.billing import EnergyReading, SessionCost, SessionUsage, User
from ems.domain.card import Card
from ems.domain.session import ChargingSession, Measurand, MeterSample, SessionStatus
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, Station
from ems.domain.tariff import Tariff
from ems.storage.factory import SqlStorage

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam


@pytest.fixture
async def seeded(storage: SqlStorage, api_services: ApiServices) -> SqlStorage:
    await storage.rollups.place_sites(api_services.sites)
    for station in ("CP001", "CP002"):
        await storage.stations.add(Station(station, site_id="depot"))
    samples = []
    for i in range(37):  # 3 hours, every 5 minutes: 7.2 kW on CP001 evse 1
        at = T0 + timedelta(minutes=5 * i)
        samples.append(MeterSample("CP001", 1, at, Measurand.ENERGY_IMPORT_REGISTER, 10_000 + 600.0 * i))
        samples.append(MeterSample("CP001", 1, at, Measurand.POWER_IMPORT, 7200.0))
        samples.append(MeterSample("CP002", 1, at, Measurand.POWER_IMPORT, 3600.0))
    await storage.samples.add_many(samples)
    await storage.samples.add_many(samples[:30])  # re-sent: counted once
    await storage.stations.record_status(ConnectorStatusRecord("CP001", 1, 1, ConnectorStatus.CHARGING, T0))
    await storage.stations.record_status(
        ConnectorStatusRecord("CP001", 1, 1, ConnectorStatus.AVAILABLE, T0 + timedelta(hours=3))
    )
    await storage.billing.users.add(User("u1", "Ann", created_at=T0))
    await storage.cards.add(Card("CARD1", user_id="u1"))
    tariff = Tariff("std", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), vat_percent=Decimal("21"))
    for n in range(3):
        start = T0 + timedelta(hours=n)
        session = ChargingSession(f"s{n}", "CP001", 1, 1, f"tx{n}", start, id_tag="CARD1")
        if n < 2:
            stop = start + timedelta(minutes=50)
            session = ChargingSession(
                f"s{n}",
                "CP001",
                1,
                1,
                f"tx{n}",
                start,
                id_tag="CARD1",
                stopped_at=stop,
                status=SessionStatus.COMPLETED,
                energy_wh=6000,
            )
            usage = SessionUsage(start, stop, (EnergyReading(start, Decimal(0)), EnergyReading(stop, Decimal(6000))))
            cost = SessionCost(
                f"s{n}", "CP001", price_session(tariff, usage, "Europe/Amsterdam"), stop, card_uid="CARD1"
            )
            await storage.billing.costs.add(cost)
        await storage.sessions.add(session)
    return storage


@pytest.fixture
async def api(seeded: SqlStorage, api_services: ApiServices, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    api_services.analytics = seeded.analytics
    app = create_app(settings, api_services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as c:
        yield c


async def test_station_days_load_curve_peaks_and_user_months(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await api.get("/api/v1/analytics/station-days?site=depot&from=2026-11-03&to=2026-11-03", headers=admin)
    assert r.status_code == 200, r.text
    days = {row["station_id"]: row for row in r.json()}
    assert days["CP001"]["energy_wh"] == "21600"  # 36 intervals of 600 Wh, the re-sent ones once
    assert days["CP001"]["hours_in_use"] == "3.00"
    assert days["CP001"]["sessions"] == 2
    assert days["CP001"]["peak_w"] == 7200.0
    assert days["CP002"]["energy_wh"] == "0"

    r = await api.get(
        "/api/v1/sites/depot/load",
        params={"from": "2026-11-03T08:00:00+00:00", "to": "2026-11-03T09:00:00+00:00", "step_s": 1800},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    curve = r.json()
    assert [p["start"] for p in curve] == ["2026-11-03T08:00:00+00:00", "2026-11-03T08:30:00+00:00"]
    assert all(p["load_w"] == 10800.0 for p in curve)

    r = await api.get("/api/v1/sites/depot/peaks?from=2026-10-01&to=2026-11-30", headers=admin)
    assert [(p["month"], p["peak_w"]) for p in r.json()] == [("2026-10", None), ("2026-11", 10800.0)]

    r = await api.get("/api/v1/analytics/users/u1/months", headers=admin)
    assert [(m["month"], m["sessions"], m["energy_wh"]) for m in r.json()] == [("2026-11", 2, "12000")]


async def test_csv_by_accept_header_or_format(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    url = "/api/v1/analytics/station-days?site=depot&from=2026-11-03&to=2026-11-03"
    for r in (
        await api.get(url, headers={**admin, "Accept": "text/csv"}),
        await api.get(url + "&format=csv", headers=admin),
    ):
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["station_id"] for row in rows] == ["CP001", "CP002"]
        assert rows[0]["energy_wh"] == "21600"


async def test_sessions_filters_and_cursor_pages(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"site": "depot", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/sessions", params=params, headers=admin)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["s2", "s1", "s0"]
    r = await api.get("/api/v1/sessions?status=completed&user=u1", headers=admin)
    assert [(s["id"], s["total"] is not None) for s in r.json()["items"]] == [("s1", True), ("s0", True)]
    r = await api.get("/api/v1/sessions?card=NOPE", headers=admin)
    assert r.json() == {"items": [], "next_cursor": None}


async def test_station_daily_report_from_rollups_equals_the_old_computation(
    api: httpx.AsyncClient, admin: dict[str, str], api_services: ApiServices, settings: Settings
) -> None:
    url = "/api/v1/reports/station-daily?from=2026-11-01&to=2026-11-30"
    from_rollups = (await api.get(url, headers=admin)).json()
    api_services.analytics = None
    app = create_app(settings, api_services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test") as plain:
        computed = (await plain.get(url, headers=admin)).json()
    assert from_rollups == computed
    assert from_rollups[0]["sessions"] == 2


async def test_bad_queries_are_422_field_by_field_and_roles_are_checked(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    r = await api.get(
        "/api/v1/sites/depot/load?from=2026-11-03T08:00:00&to=2026-11-02T00:00:00Z&step_s=301", headers=admin
    )
    assert r.status_code == 422
    text = r.text
    assert "from: give a UTC offset" in text and "step_s: must be a multiple of 300" in text
    r = await api.get("/api/v1/analytics/station-days?site=depot&from=2026-11-05&to=2026-11-01", headers=admin)
    assert r.status_code == 422 and "from/to" in r.text
    r = await api.get("/api/v1/analytics/station-days?site=nowhere&from=2026-11-01&to=2026-11-01", headers=admin)
    assert r.status_code == 422 and "site" in r.text
    r = await api.get("/api/v1/sessions?cursor=garbage", headers=admin)
    assert r.status_code == 422 and "cursor" in r.text
    r = await api.post("/api/v1/api-keys", json={"name": "d", "role": "driver"}, headers=admin)
    driver = {"Authorization": f"Bearer {r.json()['key']}"}
    assert (await api.get("/api/v1/analytics/users/u1/months", headers=driver)).status_code == 403
    assert (await api.get("/api/v1/sessions")).status_code == 401
