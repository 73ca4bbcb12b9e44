"""Writes a sample monthly site report (docs/analytics-report.html) from simulated data.

PYTHONPATH=. python benchmarks/report_demo.py [--out docs/analytics-report.html]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks.bench_analytics import START, TZ, layout, ticks
from ems.billing.pricing import price_session
from ems.config import Settings
from ems.domain.billing import EnergyReading, SessionCost, SessionUsage, User
from ems.domain.card import Card
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, Station
from ems.domain.tariff import Tariff
from ems.report_html import render
from ems.storage.analytics import site_month
from ems.storage.factory import open_storage
from ems.storage.rollup_rules import BUCKET_S, bucket_of


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs/analytics-report.html"))
    args = parser.parse_args()
    keys, sites = layout(20)
    site = sites[0]
    with tempfile.TemporaryDirectory() as tmp:
        storage = await open_storage(Settings(database_url=None, data_dir=Path(tmp), _env_file=None))  # type: ignore[call-arg]
        try:
            await storage.rollups.place_sites(sites)
            for batch in ticks(keys, 30):
                await storage.samples.add_many(batch)
            tariff = Tariff("std", "Standard", "SEK", energy_per_kwh=Decimal("3.10"), vat_percent=Decimal("25"))
            names = ("Ann", "Bo", "Cecilia", "David", "Eva", "Fredrik", "Greta")
            for i, name in enumerate(names):
                await storage.billing.users.add(User(f"u{i}", name, created_at=START))
                await storage.cards.add(Card(f"C{i}", user_id=f"u{i}"))
            for spec in site.stations:
                await storage.stations.add(Station(spec.id, site_id=site.id))
            n = 0
            for day in range(30):
                for spec in site.stations:
                    for evse in spec.evses:
                        begin = START + timedelta(days=day, hours=6 + (n * 7) % 10)
                        end = begin + timedelta(hours=1 + n % 4)
                        await storage.stations.record_status(
                            ConnectorStatusRecord(spec.id, evse.evse_id, 1, ConnectorStatus.CHARGING, begin)
                        )
                        await storage.stations.record_status(
                            ConnectorStatusRecord(spec.id, evse.evse_id, 1, ConnectorStatus.AVAILABLE, end)
                        )
                        wh = Decimal(7400 * (1 + n % 4))
                        usage = SessionUsage(begin, end, (EnergyReading(begin, Decimal(0)), EnergyReading(end, wh)))
                        card = f"C{(n * n) % len(names)}"
                        cost = SessionCost(f"s{n}", spec.id, price_session(tariff, usage, TZ), end, card_uid=card)
                        await storage.billing.costs.add(cost)
                        n += 1
            first = bucket_of(START)
            for b in range(30 * 288):
                bucket = first + b * BUCKET_S
                hour = (b // 12) % 24
                await storage.rollups.record_capacity(site.id, bucket, 40_000.0 if 7 <= hour < 20 else 60_000.0, START)
            planned = [(first + b * BUCKET_S, 20_000 + 15_000 * math.sin(b / 40)) for b in range(30 * 288)]
            await storage.rollups.record_plan(site.id, planned, START)
            data = await site_month(storage.analytics, site.id, "Depot Nord", date(2026, 11, 1))
        finally:
            await storage.close()
    args.out.write_text(render(data), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
