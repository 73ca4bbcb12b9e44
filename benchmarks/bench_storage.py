"""Meter-sample insert throughput: ems's store against the raw driver floor, same run, same table.

PostgreSQL: ``storage.samples.add_many`` (COPY through the db layer) vs one raw psycopg
``COPY ... FROM STDIN`` of the same rows prepared as tuples beforehand.
SQLite: ``storage.samples.add_many`` vs a raw ``sqlite3`` ``executemany`` in one transaction.
Each run gets a fresh schema / file with the migrated table and its indexes.

    PYTHONPATH=. python benchmarks/bench_storage.py [--rows 100000] [--batch 1000] [--repeat 3]
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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from ems.config import Settings
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.storage.factory import SqlStorage, open_storage
from ems.storage.rows import field_names, values

COLUMNS = field_names(MeterSample)
PG_URL = os.environ.get("EMS_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def make_samples(n: int) -> list[MeterSample]:
    """``n`` samples: 10 stations x 2 EVSEs, 4 measurands every 10 s, like a busy site's MeterValues."""
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    measurands = (Measurand.ENERGY_IMPORT_REGISTER, Measurand.POWER_IMPORT, Measurand.CURRENT_IMPORT, Measurand.SOC)
    return [
        MeterSample(
            station_id=f"cp-{i % 10:03d}",
            evse_id=1 + (i // 10) % 2,
            measured_at=t0 + timedelta(seconds=10 * (i // 80)),
            measurand=measurands[(i // 20) % 4],
            value=1000.0 + i * 0.5,
            session_id=f"s-{i % 20}",
            phase=None,
            context=ReadingContext.SAMPLE_PERIODIC,
            raw_value=f"{(1000.0 + i * 0.5) / 1000:.4f}",
            raw_unit="kWh",
            flag=None,
        )
        for i in range(n)
    ]


async def timed(fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def store_insert(storage: SqlStorage, samples: list[MeterSample], batch: int) -> None:
    for i in range(0, len(samples), batch):
        await storage.samples.add_many(samples[i : i + batch])


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-c%20search_path%3D{schema}"


async def pg_run(samples: list[MeterSample], batch: int) -> dict[str, float]:
    rows = [values(s, COLUMNS) for s in samples]
    results: dict[str, float] = {}
    variants = (
        ("raw COPY", False, len(samples)),
        ("store, one call", True, len(samples)),
        ("raw COPY, batches", False, batch),
        ("store, batches", True, batch),
    )
    for label, use_store, size in variants:
        schema = f"bench_{secrets.token_hex(4)}"
        url = _with_search_path(PG_URL, schema)
        storage = await open_storage(Settings(database_url=url, _env_file=None), schema=schema)  # type: ignore[call-arg]
        try:
            if use_store:
                results[label] = await timed(lambda st=storage, sz=size: store_insert(st, samples, sz))
            else:
                async with await psycopg.AsyncConnection.connect(url) as conn:
                    results[label] = await timed(lambda c=conn, sz=size: raw_copy(c, rows, sz))
            count = (await storage.db.fetchone("SELECT count(*) AS n FROM meter_samples") or {}).get("n")
            assert count == len(samples), count
        finally:
            await storage.close()
            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return results


async def raw_copy(
    conn: psycopg.AsyncConnection[tuple[object, ...]], rows: list[tuple[object, ...]], batch: int
) -> None:
    """The floor: rows already tuples, connection already open, one COPY and one commit per batch."""
    statement = f"COPY meter_samples ({', '.join(COLUMNS)}) FROM STDIN"
    for i in range(0, len(rows), batch):
        async with conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows[i : i + batch]:
                await copy.write_row(row)
        await conn.commit()


async def sqlite_run(samples: list[MeterSample], batch: int) -> dict[str, float]:
    results: dict[str, float] = {}
    variants = (("raw executemany", False, 0), ("store, one call", True, len(samples)), ("store, batches", True, batch))
    for label, use_store, size in variants:
        with tempfile.TemporaryDirectory() as tmp:
            storage = await open_storage(Settings(database_url=None, data_dir=Path(tmp), _env_file=None))  # type: ignore[call-arg]
            try:
                if use_store:
                    results[label] = await timed(lambda st=storage, sz=size: store_insert(st, samples, sz))
                else:
                    conn = sqlite3.connect(Path(tmp) / "ems.db", isolation_level=None, check_same_thread=False)
                    rows = sqlite_rows(samples)
                    try:
                        results[label] = await timed(lambda c=conn, r=rows: asyncio.to_thread(raw_executemany, c, r))
                    finally:
                        conn.close()
                count = (await storage.db.fetchone("SELECT count(*) AS n FROM meter_samples") or {}).get("n")
                assert count == len(samples), count
            finally:
                await storage.close()
    return results


def sqlite_rows(samples: list[MeterSample]) -> list[tuple[object, ...]]:
    """Rows as SQLite stores them (ISO-8601 UTC text timestamps), built before the clock starts."""
    return [
        (*values(s, COLUMNS[:2]), s.measured_at.isoformat(timespec="microseconds"), *values(s, COLUMNS[3:]))
        for s in samples
    ]


def raw_executemany(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """The floor: connection open, rows ready, one executemany in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    marks = ", ".join("?" for _ in COLUMNS)
    conn.executemany(f"INSERT INTO meter_samples ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
    conn.execute("COMMIT")


def report(title: str, floor: str, runs: list[dict[str, float]], n: int) -> None:
    print(f"\n{title} ({n:,} samples, median of {len(runs)} runs)")
    base = statistics.median(r[floor] for r in runs)
    for label in runs[0]:
        median = statistics.median(r[label] for r in runs)
        print(f"  {label:<20} {median:7.3f} s  {n / median:>10,.0f} rows/s  {median / base:5.2f}x the floor")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="samples per add_many call for the batched store run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    samples = make_samples(args.rows)
    pg = [await pg_run(samples, args.batch) for _ in range(args.repeat)]
    lite = [await sqlite_run(samples, args.batch) for _ in range(args.repeat)]
    report("PostgreSQL", "raw COPY", pg, args.rows)
    report("SQLite", "raw executemany", lite, args.rows)
    print(f"\n(store = add_many in batches of {args.batch})")


if __name__ == "__main__":
    asyncio.run(main())
