"""A/B (issue 14, migration 0023): ``rollup_evse_5min`` keyed station-first (before 0023) or time-first
(since), with 29 days of rollup rows of 1,000 EVSEs already stored, then one day of batches through
``add_many``. PostgreSQL only; variants alternate in one run (the machine's load hits both alike).

    PYTHONPATH=. python benchmarks/analytics_rekey_ab.py station,time,station,time [pre_days]
"""

import asyncio
import secrets
import sys
from datetime import timedelta

import psycopg
from psycopg import sql

from benchmarks import bench_analytics as b
from ems.config import Settings
from ems.storage.factory import open_storage

PRE_DAYS = int(sys.argv[2]) if len(sys.argv) > 2 else 29


async def run(variant: str) -> float:
    schema = f"rk_{secrets.token_hex(3)}"
    url = b.pg_url_for(schema)
    storage = await open_storage(Settings(database_url=url, _env_file=None), schema=schema)
    try:
        keys, sites = b.layout(1000)
        await storage.rollups.place_sites(sites)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if variant == "station":  # the key before migration 0023
                await conn.execute("ALTER TABLE rollup_evse_5min DROP CONSTRAINT rollup_evse_5min_pkey")
                await conn.execute("ALTER TABLE rollup_evse_5min ADD PRIMARY KEY (station_id, evse_id, bucket_s)")
            start = int((b.START - timedelta(days=PRE_DAYS)).timestamp())
            async with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY rollup_evse_5min (station_id, evse_id, bucket_s, energy_mwh, p_sum_mw, p_n, p_max_w) "
                    "FROM STDIN"
                ) as cp,
            ):
                for k in range(PRE_DAYS * 288):
                    for st, ev in keys:
                        await cp.write_row((st, ev, start + 300 * k, 1000, 5000, 1, 5.0))
            await conn.execute("VACUUM ANALYZE rollup_evse_5min")
            await conn.execute("CHECKPOINT")
        spent, _ = await b.ingest_store(storage, keys, 1)
        return spent
    finally:
        await storage.close()
        async with await psycopg.AsyncConnection.connect(b.PG_URL, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def main():
    for v in sys.argv[1].split(","):
        print(
            v,
            f"{await run(v):.1f} s ems add_many, 1 day of 1,000 EVSEs after {PRE_DAYS} days of rollup rows",
            flush=True,
        )


asyncio.run(main())
