"""Analytics (issue 14): ingest with the rollups kept up, against the raw floor, and API query latency.

1,000 EVSEs (500 stations x 2, 10 sites) x 30 days of 5-minute MeterValues (energy register and
power: 2 samples per EVSE per tick, 17.3 million samples at full size), written through
``storage.samples.add_many`` one tick of all EVSEs per call (2,000 samples), as the OCPP journal
applier writes them. Same run, same data, fresh schema / file each:

- floor: PostgreSQL raw psycopg ``COPY`` (text format; ``--pg-floor binary``: binary, as ems
  COPies) into the same (partitioned, indexed) ``meter_samples`` with the rollup trigger switched
  off, one COPY and commit per batch; SQLite raw ``sqlite3`` ``executemany`` per batch in a
  transaction, with ems's connection pragmas;
- ems: ``add_many`` (duplicate skipping, rollups kept in the same transaction).

Only the write calls are timed (the rows are built per batch outside the clock, for both).
Then sessions, status changes and priced sessions for one site, and each analytics API query
for that site and the month, through the ASGI app in-process: p95 over ``--reps`` calls.

    PYTHONPATH=. python benchmarks/bench_analytics.py [--scale 0.1] [--days 30] [--reps 40] [--backend both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.app import policy_from, settle_heap
from ems.billing.pricing import price_session
from ems.clock import FakeClock
from ems.config import Settings
from ems.domain.billing import EnergyReading, SessionCost, SessionUsage, User
from ems.domain.card import Card
from ems.domain.session import Measurand, MeterSample
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, Station
from ems.domain.tariff import Tariff
from ems.services.billing_setup import build_billing
from ems.storage.factory import SqlStorage, open_storage
from ems.storage.rows import field_names, values

COLUMNS = field_names(MeterSample)
PG_URL = os.environ.get("EMS_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
START = datetime(2026, 11, 1, tzinfo=UTC)
TZ = "Europe/Stockholm"
ADMIN = "bench-admin-key-0123456789"
TICK_S = 300


def layout(evses: int) -> tuple[list[tuple[str, int]], tuple[Site, ...]]:
    stations = max(1, evses // 2)
    sites_n = max(1, min(10, stations // 5))
    keys = [(f"cp-{s:04d}", e) for s in range(stations) for e in (1, 2)]
    sites = tuple(
        Site(
            id=f"site-{k}",
            timezone=TZ,
            stations=tuple(
                StationSpec(f"cp-{s:04d}", evses=(EvseSpec(1), EvseSpec(2)))
                for s in range(stations)
                if s % sites_n == k
            ),
        )
        for k in range(sites_n)
    )
    return keys, sites


def ticks(keys: list[tuple[str, int]], days: int) -> Iterator[list[MeterSample]]:
    """One batch per 5-minute tick: register and power of every EVSE."""
    register = {key: 1000.0 * i for i, key in enumerate(keys)}
    for t in range(days * 86_400 // TICK_S):
        at = START + timedelta(seconds=TICK_S * t)
        batch = []
        for i, key in enumerate(keys):
            charging = (i + t // 24) % 3 == 0
            power_w = 7400.0 + (i % 7) * 100 if charging else 0.0
            register[key] += power_w * TICK_S / 3600
            batch.append(MeterSample(key[0], key[1], at, Measurand.ENERGY_IMPORT_REGISTER, round(register[key], 1)))
            batch.append(MeterSample(key[0], key[1], at, Measurand.POWER_IMPORT, power_w))
        yield batch


def pg_url_for(schema: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-c%20search_path%3D{schema}"


async def ingest_store(storage: SqlStorage, keys: list[tuple[str, int]], days: int) -> tuple[float, int]:
    spent, n = 0.0, 0
    for batch in ticks(keys, days):
        start = time.perf_counter()
        await storage.samples.add_many(batch)
        spent += time.perf_counter() - start
        n += len(batch)
    return spent, n


PG_TYPES = ("text", "int4", "timestamptz", "text", "float8", "text", "text", "text", "text", "text", "text")


async def ingest_pg_raw(url: str, keys: list[tuple[str, int]], days: int, binary: bool = False) -> float:
    statement = f"COPY meter_samples ({', '.join(COLUMNS)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    spent = 0.0
    async with await psycopg.AsyncConnection.connect(url) as conn:
        end = START + timedelta(days=days)
        await conn.execute("SELECT ems_ensure_month_partitions('meter_samples', %s, %s)", (START, end))
        # The floor keeps no rollups: switch off the trigger that keeps them (migration 0022).
        await conn.execute("ALTER TABLE meter_samples DISABLE TRIGGER ems_rollup_samples")
        await conn.commit()
        for batch in ticks(keys, days):
            rows = [values(s, COLUMNS) for s in batch]
            start = time.perf_counter()
            async with conn.cursor() as cur, cur.copy(statement) as copy:
                if binary:
                    copy.set_types(list(PG_TYPES))
                for row in rows:
                    await copy.write_row(row)
            await conn.commit()
            spent += time.perf_counter() - start
    return spent


def ingest_sqlite_raw(path: Path, keys: list[tuple[str, int]], days: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # as ems's own connection (ems/storage/sqlite.py)
    sql_text = f"INSERT INTO meter_samples ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    spent = 0.0
    try:
        for batch in ticks(keys, days):
            rows = [
                (*values(s, COLUMNS[:2]), s.measured_at.isoformat(timespec="microseconds"), *values(s, COLUMNS[3:]))
                for s in batch
            ]
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql_text, rows)
            conn.execute("COMMIT")
            spent += time.perf_counter() - start
    finally:
        conn.close()
    return spent


async def seed_site(storage: SqlStorage, site: Site, days: int) -> None:
    """Sessions (one per EVSE per day), their status changes and prices, for the measured site."""
    await storage.billing.users.add(User("u-bench", "Bench", created_at=START))
    tariff = Tariff("std", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), vat_percent=Decimal("25"))
    for spec in site.stations:
        await storage.stations.add(Station(spec.id, site_id=site.id))
        await storage.cards.add(Card(f"card-{spec.id}", user_id="u-bench"))
    sessions = []
    for day in range(days):
        for spec in site.stations:
            for evse in spec.evses:
                begin = START + timedelta(days=day, hours=7 + evse.evse_id)
                end = begin + timedelta(hours=3)
                sessions.append((f"{spec.id}-{evse.evse_id}-{day}", spec.id, evse.evse_id, begin, end))
    async with storage.db.transaction() as tx:
        await tx.copy_rows(
            "sessions",
            (
                "id",
                "station_id",
                "evse_id",
                "connector_id",
                "transaction_id",
                "started_at",
                "stopped_at",
                "status",
                "id_tag",
                "energy_wh",
            ),
            [(sid, st, e, 1, sid, b, s, "completed", f"card-{st}", 22_200.0) for sid, st, e, b, s in sessions],
        )
    for sid, station_id, evse_id, begin, end in sessions:
        await storage.stations.record_status(
            ConnectorStatusRecord(station_id, evse_id, 1, ConnectorStatus.CHARGING, begin)
        )
        await storage.stations.record_status(
            ConnectorStatusRecord(station_id, evse_id, 1, ConnectorStatus.AVAILABLE, end)
        )
        usage = SessionUsage(begin, end, (EnergyReading(begin, Decimal(0)), EnergyReading(end, Decimal(22_200))))
        cost = SessionCost(sid, station_id, price_session(tariff, usage, TZ), end, card_uid=f"card-{station_id}")
        await storage.billing.costs.add(cost)


async def query_latencies(storage: SqlStorage, sites: tuple[Site, ...], reps: int) -> dict[str, float]:
    settings = Settings(admin_api_key=ADMIN, _env_file=None)  # type: ignore[arg-type,call-arg]
    clock = FakeClock(START)
    billing = build_billing(storage, clock=clock, policy=policy_from(settings, sites))
    services = ApiServices(storage=storage, clock=clock, sites=sites, billing=billing, analytics=storage.analytics)
    app = create_app(settings, services)
    settle_heap()  # as ems serve does once it has started
    site = sites[0].id
    month = {"from": "2026-11-01", "to": "2026-11-30"}
    span = {"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-01T00:00:00+01:00"}
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "station-days": ("/api/v1/analytics/station-days", {"site": site, **month}),
        "load, step 15 min": (f"/api/v1/sites/{site}/load", {**span, "step_s": 900}),
        "load, step 1 h": (f"/api/v1/sites/{site}/load", {**span, "step_s": 3600}),
        "load CSV, step 5 min": (f"/api/v1/sites/{site}/load", {**span, "step_s": 300, "format": "csv"}),
        "peaks": (f"/api/v1/sites/{site}/peaks", month),
        "user months": ("/api/v1/analytics/users/u-bench/months", {}),
        "sessions (site, month, 100)": ("/api/v1/sessions", {"site": site, **span, "limit": 100}),
        "station-daily report": ("/api/v1/reports/station-daily", month),
    }
    out: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as api:
        for label, (path, params) in queries.items():
            times = []
            for i in range(reps + 3):
                start = time.perf_counter()
                r = await api.get(path, params=params, headers=headers)
                elapsed = time.perf_counter() - start
                assert r.status_code == 200, (label, r.status_code, r.text[:300])
                assert len(r.content) > 2, (label, r.text)
                if i >= 3:
                    times.append(elapsed)
            out[label] = statistics.quantiles(times, n=20)[-1] * 1000
    return out


async def run_pg(
    keys: list[tuple[str, int]], sites: tuple[Site, ...], days: int, reps: int, binary_floor: bool = False
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for label in ("raw", "store"):
        schema = f"bench_an_{secrets.token_hex(4)}"
        url = pg_url_for(schema)
        storage = await open_storage(Settings(database_url=url, _env_file=None), schema=schema)  # type: ignore[call-arg]
        try:
            if label == "raw":
                result["raw_s"] = await ingest_pg_raw(url, keys, days, binary_floor)
            else:
                await storage.rollups.place_sites(sites)
                result["store_s"], result["samples"] = await ingest_store(storage, keys, days)
                await seed_site(storage, sites[0], days)
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute("ANALYZE")
                result["queries_ms"] = await query_latencies(storage, sites, reps)
                result["settle_s"] = await settle(url)
                result["settled_ms"] = await query_latencies(storage, sites, reps)
        finally:
            await storage.close()
            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return result


async def settle(url: str, quiet_polls: int = 3, limit_s: float = 1200.0) -> float:
    """Wait until the server is done with what the ingest left it (autovacuum's first passes over
    millions of new rows), then CHECKPOINT: the queries are measured again in that steady state.
    Returns the seconds waited."""
    start, quiet = time.perf_counter(), 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while quiet < quiet_polls and time.perf_counter() - start < limit_s:
            cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
            found = await cur.fetchone()
            quiet = quiet + 1 if found is not None and found[0] == 0 else 0
            await asyncio.sleep(2.0)
        await conn.execute("CHECKPOINT")
    return time.perf_counter() - start


async def run_sqlite(keys: list[tuple[str, int]], sites: tuple[Site, ...], days: int, reps: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for label in ("raw", "store"):
        with tempfile.TemporaryDirectory() as tmp:
            storage = await open_storage(Settings(database_url=None, data_dir=Path(tmp), _env_file=None))  # type: ignore[call-arg]
            try:
                if label == "raw":
                    result["raw_s"] = await asyncio.to_thread(ingest_sqlite_raw, Path(tmp) / "ems.db", keys, days)
                else:
                    await storage.rollups.place_sites(sites)
                    result["store_s"], result["samples"] = await ingest_store(storage, keys, days)
                    await seed_site(storage, sites[0], days)
                    await storage.db.execute("ANALYZE")
                    result["queries_ms"] = await query_latencies(storage, sites, reps)
            finally:
                await storage.close()
    return result


def report(title: str, floor: str, r: dict[str, Any], target_ms: float) -> None:
    n = r["samples"]
    print(f"\n{title}: {n:,} samples")
    print(f"  {floor:<28} {r['raw_s']:8.1f} s  {n / r['raw_s']:>10,.0f} samples/s")
    print(f"  {'ems add_many + rollups':<28} {r['store_s']:8.1f} s  {n / r['store_s']:>10,.0f} samples/s")
    print(f"  ingest ratio (floor time / ems time): {r['raw_s'] / r['store_s']:.2f}x (target >= 0.7x)")
    settled = r.get("settled_ms")
    if settled is not None:
        print(f"  queries right after the ingest, then settled (autovacuum done, CHECKPOINT; {r['settle_s']:.0f} s):")
    for label, ms in r["queries_ms"].items():
        flag = "ok" if ms <= target_ms else "MISSED"
        line = f"  p95 {label:<30} {ms:7.1f} ms  (target {target_ms:.0f} ms: {flag})"
        if settled is not None:
            flag = "ok" if settled[label] <= target_ms else "MISSED"
            line += f"  settled {settled[label]:7.1f} ms ({flag})"
        print(line)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 1,000 EVSEs (0.1: 100 EVSEs)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--backend", choices=("both", "postgresql", "sqlite"), default="both")
    parser.add_argument(
        "--pg-floor",
        choices=("text", "binary"),
        default="text",
        help="the PostgreSQL floor's COPY format (text: the issue's floor; ems itself COPies in binary)",
    )
    args = parser.parse_args()
    keys, sites = layout(max(2, round(1000 * args.scale)))
    print(f"{len(keys)} EVSEs, {len(sites)} sites, {args.days} days, batch = one tick = {2 * len(keys)} samples")
    if args.backend in ("both", "postgresql"):
        floor = "raw COPY (floor)" if args.pg_floor == "text" else "raw binary COPY (floor)"
        report("PostgreSQL", floor, await run_pg(keys, sites, args.days, args.reps, args.pg_floor == "binary"), 50)
    if args.backend in ("both", "sqlite"):
        report("SQLite", "raw executemany (floor)", await run_sqlite(keys, sites, args.days, args.reps), 200)


if __name__ == "__main__":
    asyncio.run(main())
