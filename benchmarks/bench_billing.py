"""Billing hot paths against a floor measured in the same run.

1. ``price_session`` of an 8-hour session with a reading every 10 s (2,881 readings), three
   time-of-use bands in Europe/Amsterdam, crossing midnight, against the floor: the same readings
   made monotone and summed as exact ``Fraction`` deltas (what any exact pricing must at least do).
2. Holds through ``LedgerStore.apply`` on SQLite and PostgreSQL (one account, sequential and
   50 concurrent), against the floor: one raw ``INSERT`` of a row per hold through the same db layer.

    PYTHONPATH=. python benchmarks/bench_billing.py [--repeat 5] [--holds 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import psycopg
from psycopg import sql

from ems.billing.ledger import place_hold, top_up
from ems.billing.pricing import price_session
from ems.config import Settings
from ems.domain.billing import Account, EnergyReading, SessionUsage
from ems.domain.ledger import Hold
from ems.domain.tariff import Tariff, TouBand
from ems.storage.factory import SqlStorage, open_storage

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
TARIFF = Tariff(
    "bench",
    "Bench",
    "EUR",
    energy_per_kwh=Decimal("0.30"),
    time_per_minute=Decimal("0.01"),
    session_fee=Decimal("1.00"),
    idle_per_minute=Decimal("0.10"),
    idle_grace_minutes=15,
    tou=(
        TouBand("peak", clock_time(17), clock_time(21), energy_per_kwh=Decimal("0.45")),
        TouBand("night", clock_time(23), clock_time(6), energy_per_kwh=Decimal("0.20")),
        TouBand("weekend", clock_time(8), clock_time(17), frozenset({5, 6}), energy_per_kwh=Decimal("0.25")),
    ),
    vat_percent=Decimal("21"),
)


def _usage() -> SessionUsage:
    readings = tuple(EnergyReading(T0 + timedelta(seconds=10 * i), Decimal(1_000_000 + 30 * i)) for i in range(2881))
    return SessionUsage(T0, T0 + timedelta(hours=8, minutes=30), readings)


def _floor(usage: SessionUsage) -> Fraction:
    values = [Fraction(r.register_wh) for r in sorted(usage.readings, key=lambda r: r.at)]
    total, high = Fraction(0), values[0]
    for v in values[1:]:
        if v > high:
            total += v - high
            high = v
    return total


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


async def _best_async(fn: Callable[[], Awaitable[object]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return min(times)


async def _ledger(storage: SqlStorage, holds: int, repeat: int) -> tuple[float, float, float]:
    ledger = storage.billing.ledger
    await storage.db.execute("CREATE TABLE bench_floor (id TEXT PRIMARY KEY, amount_minor BIGINT NOT NULL)")
    run = 0

    async def setup() -> str:
        nonlocal run
        run += 1
        account = f"acc{run}"
        await ledger.open_account(Account(account, "EUR", T0))
        await ledger.apply(account, lambda s: top_up(s, movement_id=f"top{run}", amount_minor=holds * 100, at=T0))
        return account

    async def hold(account: str, i: int) -> None:
        h = Hold(f"{account}-h{i}", account, "EUR", 100, T0)
        await ledger.apply(account, lambda s: place_hold(s, movement_id=f"{account}-m{i}", hold=h, at=T0))

    async def sequential() -> None:
        account = await setup()
        for i in range(holds):
            await hold(account, i)

    async def concurrent() -> None:
        account = await setup()
        for start in range(0, holds, 50):
            await asyncio.gather(*(hold(account, i) for i in range(start, min(start + 50, holds))))

    async def floor() -> None:
        nonlocal run
        run += 1
        for i in range(holds):
            await storage.db.execute("INSERT INTO bench_floor VALUES (?, ?)", (f"f{run}-{i}", 100))

    return (
        await _best_async(floor, repeat) / holds,
        await _best_async(sequential, repeat) / holds,
        await _best_async(concurrent, repeat) / holds,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--holds", type=int, default=500)
    args = parser.parse_args()

    usage = _usage()
    floor_s = _best(lambda: _floor(usage), args.repeat)
    price_s = _best(lambda: price_session(TARIFF, usage, "Europe/Amsterdam"), args.repeat)
    print(
        f"pricing, 2,881 readings, 3 TOU bands: {price_s * 1e3:.1f} ms; floor {floor_s * 1e3:.2f} ms; "
        f"ratio {price_s / floor_s:.1f}x"
    )

    with tempfile.TemporaryDirectory() as tmp:
        storage = await open_storage(Settings(database_url=None, data_dir=Path(tmp)))
        try:
            f, s, c = await _ledger(storage, args.holds, args.repeat)
        finally:
            await storage.close()
    print(
        f"sqlite holds: floor {f * 1e3:.2f} ms/insert; apply {s * 1e3:.2f} ms/hold ({s / f:.1f}x); "
        f"50 concurrent {c * 1e3:.2f} ms/hold ({c / f:.1f}x)"
    )

    url = os.environ.get("EMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        storage = await open_storage(Settings(database_url=url), schema=schema)
        try:
            f, s, c = await _ledger(storage, args.holds, args.repeat)
        finally:
            await storage.close()
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print(
        f"postgresql holds: floor {f * 1e3:.2f} ms/insert; apply {s * 1e3:.2f} ms/hold ({s / f:.1f}x); "
        f"50 concurrent {c * 1e3:.2f} ms/hold ({c / f:.1f}x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
