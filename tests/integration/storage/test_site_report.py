"""The monthly site report: self-contained HTML with the charts, from the rollups (issue 14)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ems.billing.pricing import price_session
from ems.domain.billing import EnergyReading, SessionCost, SessionUsage, User
from ems.domain.card import Card
from ems.domain.session import Measurand, MeterSample
from ems.domain.site import Site, StationSpec
from ems.domain.station import Station
from ems.domain.tariff import Tariff
from ems.report_html import render
from ems.storage.analytics import site_month
from ems.storage.factory import SqlStorage
from tests.integration.cli.test_cli import env_for

ROOT = Path(__file__).parents[3]


async def test_report_shows_the_month_from_the_rollups(storage: SqlStorage) -> None:
    site = Site(id="depot", name="Depot", timezone="Europe/Stockholm", stations=(StationSpec("CP1"),))
    await storage.rollups.place_sites((site,))
    await storage.stations.add(Station("CP1"))
    t0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    await storage.samples.add_many(
        [
            s
            for i in range(25)
            for s in (
                MeterSample("CP1", 1, t0 + timedelta(minutes=5 * i), Measurand.ENERGY_IMPORT_REGISTER, 1000.0 * i),
                MeterSample("CP1", 1, t0 + timedelta(minutes=5 * i), Measurand.POWER_IMPORT, 12_000.0),
            )
        ]
    )
    await storage.billing.users.add(User("u1", "Ann Analyst", created_at=t0))
    await storage.cards.add(Card("C1", user_id="u1"))
    tariff = Tariff("std", "Standard", "SEK", energy_per_kwh=Decimal("3.00"), vat_percent=Decimal("25"))
    end = t0 + timedelta(hours=2)
    usage = SessionUsage(t0, end, (EnergyReading(t0, Decimal(0)), EnergyReading(end, Decimal(24_000))))
    await storage.billing.costs.add(
        SessionCost("s1", "CP1", price_session(tariff, usage, site.timezone), end, card_uid="C1")
    )

    data = await site_month(storage.analytics, "depot", "Depot", date(2026, 11, 1))
    assert data.days == [("2026-11-02", 24.0)]
    assert data.peak_kw == 12.0
    assert data.top_users == [("Ann Analyst", 24.0, 1)]
    assert data.revenue[0][:2] == ("2026-11-02", "SEK") and data.revenue[0][2] > 0
    assert data.load_by_weekday_hour[(0, 8)] == 12.0  # Monday 08:00 local (07:00 UTC)
    page = render(data)
    assert page.count("<svg") == 5 and "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert "Ann Analyst" in page and "24.0 kWh" in page


@pytest.mark.slow
def test_report_command_writes_the_file_and_refuses_a_bad_month(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    out = tmp_path / "report.html"
    base = [
        sys.executable,
        "-m",
        "ems",
        "report",
        "--site",
        "depot",
        "--site-file",
        str(ROOT / "examples" / "site.toml"),
    ]
    r = subprocess.run(
        [*base, "--month", "2026-11", "--out", str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert re.search(r"<svg", out.read_text()) and "No data for this month" in out.read_text()
    r = subprocess.run(
        [*base, "--month", "2026-13", "--out", str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "--month: want YYYY-MM" in r.stderr and "Traceback" not in r.stderr
