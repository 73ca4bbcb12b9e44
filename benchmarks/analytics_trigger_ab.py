"""Where the PostgreSQL ingest's time goes (issue 14): the rollup trigger's parts, A/B in one run.

Each variant of the rollup trigger's function (migration 0022) gets its own fresh schema; the same
batches (one 5-minute tick of 1,000 EVSEs: 2,000 samples, as ``bench_analytics.py`` writes them)
are COPied into every schema in turn, the order reversed every other batch, so the machine's load
hits all variants alike. Per batch: binary COPY into ``meter_samples`` and commit, the trigger
firing in it. The variants are made from the migration's text, so they follow it:

- ``current``: the function as migrated;
- ``in-order``: the statement without the late-sample machinery (the series / late / stored /
  steps / newest CTEs): valid only for batches whose register points are all newer than the
  stored ones, one per EVSE (as here), so it prints whether its rollups equal ``current``'s;
- ``in-order-no-day`` / ``in-order-no-day-no-site``: that, without the station-day upsert, and
  without the site upsert too;
- ``in-order-no-state``: ``in-order`` without the register-state upsert (its rollups then differ);
- ``none``: ``RETURN NULL`` (COPY alone: the floor's work, in binary).

    PYTHONPATH=. python benchmarks/analytics_trigger_ab.py [--warm 20] [--batches 100] [--evses 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.bench_analytics import COLUMNS, PG_TYPES, PG_URL, layout, pg_url_for, ticks
from ems.config import Settings
from ems.storage.factory import open_storage
from ems.storage.rows import values

MIGRATION = Path(__file__).resolve().parents[1] / "ems/storage/migrations/0022_ingest_rollups.postgresql.sql"
ROLLUPS = ("rollup_evse_5min", "rollup_site_5min", "rollup_station_day", "rollup_register_state")

IN_ORDER_CTES = """    j AS (
        SELECT p.station_id, p.evse_id, p.at, p.wh, r.last_wh
        FROM pts p LEFT JOIN rollup_register_state r ON r.station_id = p.station_id AND r.evse_id = p.evse_id
    ),
    state_up AS (
        INSERT INTO rollup_register_state AS r (station_id, evse_id, last_at, last_wh)
        SELECT station_id, evse_id, at, wh FROM j
        ON CONFLICT (station_id, evse_id) DO UPDATE SET last_at = excluded.last_at, last_wh = excluded.last_wh
        WHERE (r.last_at, r.last_wh) IS DISTINCT FROM (excluded.last_at, excluded.last_wh)
    ),
    parts AS (
        SELECT station_id, evse_id, ems_bucket_s(at) AS bucket_s,
               CASE WHEN wh - last_wh > 0 THEN round((wh - last_wh) * 1000)::BIGINT ELSE 0 END AS mwh,
               NULL::INTEGER AS slot, NULL::DOUBLE PRECISION AS value
        FROM j
        UNION ALL
"""


def variants() -> dict[str, str | None]:
    text = MIGRATION.read_text()
    fn = text[text.index("CREATE OR REPLACE FUNCTION ems_rollup_new_samples") :]
    fn = fn[: fn.index("$fn$;") + len("$fn$;")]
    # in order: pl and pts, then the CTEs above, then the migration's own power part of "parts" onwards
    head = fn[: fn.index("    -- the newest stored point of each")]
    power = fn.index("        SELECT station_id, evse_id, ems_bucket_s(measured_at), NULL,")
    in_order = head + IN_ORDER_CTES + fn[power:]
    day = in_order.index("    INSERT INTO rollup_station_day AS r")
    ret = in_order.index("    RETURN NULL;")
    no_day = (in_order[:day] + "    SELECT count(*) INTO n FROM moved;\n" + in_order[ret:]).replace(
        "AS $fn$\nBEGIN", "AS $fn$\nDECLARE n BIGINT;\nBEGIN"
    )
    site = no_day.index("    site_up AS (")
    no_site = no_day[:site].rstrip().rstrip(",") + "\n" + no_day[no_day.index("    SELECT count(*) INTO n") :]
    state = in_order.index("    state_up AS (")
    no_state = in_order[:state] + in_order[in_order.index("    parts AS (") :]
    none = (
        "CREATE OR REPLACE FUNCTION ems_rollup_new_samples() RETURNS trigger LANGUAGE plpgsql"
        " AS $fn$ BEGIN RETURN NULL; END $fn$;"
    )
    return {
        "current": None,
        "in-order": in_order,
        "in-order-no-day": no_day,
        "in-order-no-day-no-site": no_site,
        "in-order-no-state": no_state,
        "none": none,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warm", type=int, default=20, help="batches before timing starts")
    ap.add_argument("--batches", type=int, default=100, help="timed batches per variant")
    ap.add_argument("--evses", type=int, default=1000)
    args = ap.parse_args()
    keys, sites = layout(args.evses)
    statement = f"COPY meter_samples ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    named = variants()
    conns: list[psycopg.AsyncConnection] = []
    schemas: list[str] = []
    try:
        for body in named.values():
            schema = f"bench_ab_{secrets.token_hex(4)}"
            storage = await open_storage(Settings(database_url=pg_url_for(schema), _env_file=None), schema=schema)  # type: ignore[call-arg]
            schemas.append(schema)
            await storage.rollups.place_sites(sites)
            await storage.close()
            conn = await psycopg.AsyncConnection.connect(pg_url_for(schema))
            conns.append(conn)
            if body is not None:
                await conn.execute(body)
            await conn.commit()
        times: list[list[float]] = [[] for _ in named]
        days = 1 + (args.warm + args.batches) // 288
        for k, batch in enumerate(ticks(keys, days)):
            if k >= args.warm + args.batches:
                break
            rows = [values(s, COLUMNS) for s in batch]
            order = range(len(conns)) if k % 2 == 0 else reversed(range(len(conns)))
            for i in order:
                start = time.perf_counter()
                async with conns[i].cursor() as cur, cur.copy(statement) as copy:
                    copy.set_types(list(PG_TYPES))
                    for row in rows:
                        await copy.write_row(row)
                await conns[i].commit()
                if k >= args.warm:
                    times[i].append(time.perf_counter() - start)
        stored = []
        for conn in conns:
            tables = []
            for table in ROLLUPS:
                cur = await conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
                tables.append(await cur.fetchall())
            stored.append(tables)
        print(f"{args.evses} EVSEs, {args.batches} timed batches of {2 * args.evses} samples after {args.warm}")
        for (name, _), ts, tables in zip(named.items(), times, stored, strict=True):
            same = "same rollups as current" if tables == stored[0] else "rollups differ from current"
            print(
                f"  {name:<26} median {1000 * statistics.median(ts):6.1f} ms"
                f"  mean {1000 * statistics.mean(ts):6.1f} ms   {same}"
            )
    finally:
        for conn in conns:
            await conn.close()
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    asyncio.run(main())
