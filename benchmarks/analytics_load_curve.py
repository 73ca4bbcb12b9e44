"""The load curve of one site-month (issue 14), in process, PostgreSQL: the rows made in Python
(``load_curve``, then ``json.dumps`` as the API did) against the JSON made by the database
(``load_curve_json``, what the API answers now), at steps of 15 min, 1 h and 5 min; and the CSV
the same two ways (the rows written by ``csv_text``, as the API did, against ``load_curve_csv``,
made by the database); 30 calls each.
A fresh schema holds a month of 5-minute site rows and plans for 10 sites.

    PYTHONPATH=. python benchmarks/analytics_load_curve.py
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from benchmarks import bench_analytics as b
from ems.config import Settings
from ems.csv_rows import csv_text
from ems.storage.factory import open_storage

SITE_COLUMNS = "site_id, bucket_s, energy_mwh, load_mw, l1_mw, l2_mw, l3_mw"
PLAN_COLUMNS = "site_id, bucket_s, planned_w, capacity_w, recorded_at"


async def timed(call: Callable[[], Awaitable[object]], reps: int = 30) -> str:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return f"median {statistics.median(times) * 1000:.1f} ms, p95 {statistics.quantiles(times, n=20)[-1] * 1000:.1f} ms"


async def main() -> None:
    schema = f"lc_{secrets.token_hex(3)}"
    url = b.pg_url_for(schema)
    storage = await open_storage(Settings(database_url=url, _env_file=None), schema=schema)  # type: ignore[call-arg]
    try:
        start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
        rows = [
            (f"site-{s}", start + 300 * k, 1000 * k, 5_000_000 + k, 1, 2, 3)
            for s in range(10)
            for k in range(8640 + 300)
        ]
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            async with conn.cursor() as cur, cur.copy(f"COPY rollup_site_5min ({SITE_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)
            async with conn.cursor() as cur, cur.copy(f"COPY analytics_site_plan ({PLAN_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row((row[0], row[1], 1000.0, 2000.0, datetime.now(UTC)))
            await conn.execute("ANALYZE")
        analytics = storage.analytics
        since, until = datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC)
        for step in (900, 3600, 300):
            window = ("site-0", since, until, step)
            made = await timed(lambda: analytics.load_curve_json(*window))  # noqa: B023
            rows_dumped = await timed(lambda: _dumped(analytics, window))  # noqa: B023
            print(f"step {step} s, JSON by the database: {made}; rows + json.dumps: {rows_dumped}")
            made = await timed(lambda: analytics.load_curve_csv(*window))  # noqa: B023
            rows_written = await timed(lambda: _written(analytics, window))  # noqa: B023
            print(f"step {step} s, CSV by the database: {made}; rows + csv_text: {rows_written}")
    finally:
        await storage.close()
        async with await psycopg.AsyncConnection.connect(b.PG_URL, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def _dumped(analytics: object, window: tuple[str, datetime, datetime, int]) -> str:
    return json.dumps(await analytics.load_curve(*window))  # type: ignore[attr-defined]


async def _written(analytics: object, window: tuple[str, datetime, datetime, int]) -> str:
    return csv_text(await analytics.load_curve(*window))  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
