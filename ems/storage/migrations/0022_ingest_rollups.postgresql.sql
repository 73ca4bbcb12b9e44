-- Ingest (issue 14), PostgreSQL: the sample rollups kept up by the database itself, set-based,
-- in the statement that stores the samples. A statement-level AFTER INSERT trigger on
-- meter_samples reads the rows that statement stored (its transition table: only the rows
-- inserted, so after an INSERT ... ON CONFLICT DO NOTHING only the new ones) and updates
-- rollup_register_state, rollup_evse_5min, rollup_site_5min and rollup_station_day in one
-- statement. So a batch is one COPY straight into meter_samples (ems/storage/samples.py), with
-- no rows sent twice and no round trip for the rollups.
--
-- The definitions are those of ems/storage/rollups.py (module docstring), which stays the
-- reference: RollupWriter.rebuild recomputes every rollup from the raw rows in Python, and
-- tests/integration/storage/test_rollups.py compares the two row for row. Exactness notes:
-- round(double precision) rounds half to even, as Python's round() does; ems_floor_div floors as
-- Python's // does (PostgreSQL's integer / truncates); extract(epoch ...) is numeric (exact).
--
-- TimescaleDB hypertables have no transition tables: there the trigger is not created and
-- ems/storage/samples.py keeps the rollups from Python (RollupWriter.apply_samples).

CREATE OR REPLACE FUNCTION ems_floor_div(a BIGINT, b BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN b = 0 THEN 0 WHEN a >= 0 THEN a / b ELSE -((b - 1 - a) / b) END $$;

-- STABLE, as extract() from a TIMESTAMPTZ is: so it is inlined (an IMMUTABLE one would be called per row).
CREATE OR REPLACE FUNCTION ems_bucket_s(at TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT (floor(extract(epoch FROM at) / 300) * 300)::BIGINT $$;

CREATE OR REPLACE FUNCTION ems_rollup_new_samples() RETURNS trigger LANGUAGE plpgsql
-- The transition table's row count is not known when the plan is made (and the plan is kept for
-- the session): without this, joins between the CTEs below become nested loops, quadratic in the
-- batch (1,000 EVSEs: a million comparisons). The lookups of a late sample's stored neighbours are
-- LATERAL subqueries (OFFSET 0: never pulled up), so they stay index lookups.
SET enable_nestloop = off
-- the plan's cost then looks huge and would be JIT-compiled, at every call (seconds, for milliseconds of work)
SET jit = off
AS $fn$
BEGIN
    -- One batch at a time applies its samples (until commit): each sees every batch applied before
    -- it (the newest register point, the stored neighbours of a late point, the EVSE sums the site
    -- load is moved by). Concurrent batches would wait anyway, on the site's 5-minute row.
    PERFORM pg_advisory_xact_lock(6647155, 22);  -- ('ems', migration 22)
    WITH
    -- the site and zone of each station in the batch ('*' is the default, else no site, UTC)
    pl AS (
        SELECT s.station_id, COALESCE(p.site_id, d.site_id, '') AS site_id,
               COALESCE(p.timezone, d.timezone, 'UTC') AS tz
        FROM (SELECT DISTINCT station_id FROM new_rows) s
        LEFT JOIN analytics_placement p ON p.station_id = s.station_id
        LEFT JOIN analytics_placement d ON d.station_id = '*'
    ),
    -- trusted total register readings: one point per instant, its highest reading
    pts AS (
        SELECT station_id, evse_id, measured_at AS at, max(value) AS wh
        FROM new_rows
        WHERE measurand = 'Energy.Active.Import.Register' AND phase IS NULL AND flag IS NULL
          AND value >= 0 AND value <= 1e11
        GROUP BY 1, 2, 3
    ),
    -- the newest stored point of each of the batch's EVSEs (batches are serialized: see the lock above);
    -- a hash join over the whole table (one row per EVSE) costs less than a lookup per EVSE
    st AS (
        SELECT r.station_id, r.evse_id, r.last_at, r.last_wh
        FROM rollup_register_state r
        WHERE (r.station_id, r.evse_id) IN (SELECT station_id, evse_id FROM pts)
    ),
    -- the batch's points and the stored newest point, per EVSE: late when a point of the batch is
    -- not after the stored newest one
    series AS (
        SELECT station_id, evse_id, at, wh, is_state,
               min(at) FILTER (WHERE NOT is_state) OVER w AS first_at,
               max(at) FILTER (WHERE NOT is_state) OVER w AS last_new,
               max(at) FILTER (WHERE is_state) OVER w AS last_at
        FROM (
            SELECT station_id, evse_id, at, wh, false AS is_state FROM pts
            UNION ALL
            SELECT station_id, evse_id, last_at, last_wh, true FROM st
        ) x
        WINDOW w AS (PARTITION BY station_id, evse_id)
    ),
    ord AS (SELECT station_id, evse_id, at, wh FROM series WHERE last_at IS NULL OR first_at > last_at),
    -- late: the stored points between the stored neighbours of the batch's points, each marked
    -- whether this statement stored it (natural key); "after" has them, "before" not
    late AS (
        SELECT DISTINCT station_id, evse_id, first_at, last_new FROM series WHERE first_at <= last_at
    ),
    stored AS (
        SELECT m.station_id, m.evse_id, m.measured_at AS at, m.value AS wh,
               EXISTS (
                   SELECT 1 FROM new_rows n
                   WHERE n.station_id = m.station_id AND n.evse_id = m.evse_id AND n.measured_at = m.measured_at
                     AND n.measurand = m.measurand AND COALESCE(n.phase, '') = COALESCE(m.phase, '')
                     AND n.context = m.context AND COALESCE(n.raw_value, '') = COALESCE(m.raw_value, '')
               ) AS is_new
        FROM late w
        CROSS JOIN LATERAL (
            SELECT
                (SELECT max(m.measured_at) FROM meter_samples m
                 WHERE m.station_id = w.station_id AND m.evse_id = w.evse_id
                   AND m.measurand = 'Energy.Active.Import.Register' AND m.phase IS NULL AND m.flag IS NULL
                   AND m.value >= 0 AND m.value <= 1e11 AND m.measured_at < w.first_at) AS lo,
                (SELECT min(m.measured_at) FROM meter_samples m
                 WHERE m.station_id = w.station_id AND m.evse_id = w.evse_id
                   AND m.measurand = 'Energy.Active.Import.Register' AND m.phase IS NULL AND m.flag IS NULL
                   AND m.value >= 0 AND m.value <= 1e11 AND m.measured_at > w.last_new) AS hi
            OFFSET 0
        ) b
        CROSS JOIN LATERAL (
            SELECT * FROM meter_samples m
            WHERE m.station_id = w.station_id AND m.evse_id = w.evse_id
              AND m.measured_at >= COALESCE(b.lo, '-infinity') AND m.measured_at <= COALESCE(b.hi, 'infinity')
              AND m.measurand = 'Energy.Active.Import.Register' AND m.phase IS NULL AND m.flag IS NULL
              AND m.value >= 0 AND m.value <= 1e11
            OFFSET 0  -- kept a lookup per EVSE (an index range scan), never pulled up into a join
        ) m
    ),
    after_s AS (SELECT station_id, evse_id, at, max(wh) AS wh FROM stored GROUP BY 1, 2, 3),
    before_s AS (SELECT station_id, evse_id, at, max(wh) AS wh FROM stored WHERE NOT is_new GROUP BY 1, 2, 3),
    steps AS (
        SELECT station_id, evse_id, at, 1 AS sign,
               wh - lag(wh) OVER (PARTITION BY station_id, evse_id ORDER BY at) AS inc
        FROM ord
        UNION ALL
        SELECT station_id, evse_id, at, 1, wh - lag(wh) OVER (PARTITION BY station_id, evse_id ORDER BY at)
        FROM after_s
        UNION ALL
        SELECT station_id, evse_id, at, -1, wh - lag(wh) OVER (PARTITION BY station_id, evse_id ORDER BY at)
        FROM before_s
    ),
    -- the newest point per EVSE now (the highest reading at the newest instant)
    newest AS (
        SELECT DISTINCT ON (station_id, evse_id) station_id, evse_id, at, wh
        FROM (
            SELECT station_id, evse_id, at, wh FROM series
            UNION ALL
            SELECT station_id, evse_id, at, wh FROM after_s
        ) x
        ORDER BY station_id, evse_id, at DESC, wh DESC
    ),
    -- the state moves only where the newest point changed; an EVSE seen for the first time gets a row
    state_moved AS (
        UPDATE rollup_register_state r SET last_at = n.at, last_wh = n.wh
        FROM newest n
        WHERE r.station_id = n.station_id AND r.evse_id = n.evse_id
          AND (r.last_at, r.last_wh) IS DISTINCT FROM (n.at, n.wh)
    ),
    state_new AS (
        INSERT INTO rollup_register_state (station_id, evse_id, last_at, last_wh)
        SELECT n.station_id, n.evse_id, n.at, n.wh
        FROM newest n
        WHERE NOT EXISTS (SELECT 1 FROM st WHERE st.station_id = n.station_id AND st.evse_id = n.evse_id)
    ),
    -- per EVSE bucket, what this batch adds: energy (the increase of each interval, a decrease
    -- counting 0, in the bucket of its later point), a row for the bucket of every new point
    -- (0 energy if the register did not move) and power (slot 0 = total, no phase; 1..3 =
    -- L1..L3 or Lx-N; other phases are not kept)
    parts AS (
        SELECT station_id, evse_id, ems_bucket_s(at) AS bucket_s, sign * round(inc * 1000)::BIGINT AS mwh,
               NULL::INTEGER AS slot, NULL::DOUBLE PRECISION AS value
        FROM steps WHERE inc > 0
        UNION ALL
        SELECT station_id, evse_id, ems_bucket_s(at), 0, NULL, NULL FROM pts
        UNION ALL
        SELECT station_id, evse_id, ems_bucket_s(measured_at), NULL,
               CASE WHEN phase IS NULL THEN 0 WHEN phase IN ('L1', 'L1-N') THEN 1
                    WHEN phase IN ('L2', 'L2-N') THEN 2 WHEN phase IN ('L3', 'L3-N') THEN 3 END,
               value
        FROM new_rows
        WHERE measurand = 'Power.Active.Import' AND flag IS NULL AND value >= -1e9 AND value <= 1e9
          AND (phase IS NULL OR phase IN ('L1', 'L1-N', 'L2', 'L2-N', 'L3', 'L3-N'))
    ),
    delta AS (
        SELECT station_id, evse_id, bucket_s, COALESCE(sum(mwh), 0)::BIGINT AS energy_mwh,
            COALESCE(sum(round(value * 1000)::BIGINT) FILTER (WHERE slot = 0), 0)::BIGINT AS p_sum_mw,
            count(*) FILTER (WHERE slot = 0)::INTEGER AS p_n,
            GREATEST(0, max(value) FILTER (WHERE slot = 0)) AS p_max_w,
            COALESCE(sum(round(value * 1000)::BIGINT) FILTER (WHERE slot = 1), 0)::BIGINT AS l1_sum_mw,
            count(*) FILTER (WHERE slot = 1)::INTEGER AS l1_n,
            GREATEST(0, max(value) FILTER (WHERE slot = 1)) AS l1_max_w,
            COALESCE(sum(round(value * 1000)::BIGINT) FILTER (WHERE slot = 2), 0)::BIGINT AS l2_sum_mw,
            count(*) FILTER (WHERE slot = 2)::INTEGER AS l2_n,
            GREATEST(0, max(value) FILTER (WHERE slot = 2)) AS l2_max_w,
            COALESCE(sum(round(value * 1000)::BIGINT) FILTER (WHERE slot = 3), 0)::BIGINT AS l3_sum_mw,
            count(*) FILTER (WHERE slot = 3)::INTEGER AS l3_n,
            GREATEST(0, max(value) FILTER (WHERE slot = 3)) AS l3_max_w
        FROM parts
        GROUP BY 1, 2, 3
        -- a bucket only stored points' energy reaches, whose energy sums to 0, is no change (as in rollups.py)
        HAVING count(slot) > 0 OR sum(mwh) <> 0 OR bool_or(slot IS NULL AND mwh = 0)
    ),
    up AS (
        INSERT INTO rollup_evse_5min AS r (
            station_id, evse_id, bucket_s, energy_mwh,
            p_sum_mw, p_n, p_max_w, l1_sum_mw, l1_n, l1_max_w, l2_sum_mw, l2_n, l2_max_w, l3_sum_mw, l3_n, l3_max_w
        )
        SELECT station_id, evse_id, bucket_s, energy_mwh,
               p_sum_mw, p_n, p_max_w, l1_sum_mw, l1_n, l1_max_w, l2_sum_mw, l2_n, l2_max_w, l3_sum_mw, l3_n, l3_max_w
        FROM delta
        ON CONFLICT (station_id, evse_id, bucket_s) DO UPDATE SET
            energy_mwh = r.energy_mwh + excluded.energy_mwh,
            p_sum_mw = r.p_sum_mw + excluded.p_sum_mw, p_n = r.p_n + excluded.p_n,
            p_max_w = GREATEST(r.p_max_w, excluded.p_max_w),
            l1_sum_mw = r.l1_sum_mw + excluded.l1_sum_mw, l1_n = r.l1_n + excluded.l1_n,
            l1_max_w = GREATEST(r.l1_max_w, excluded.l1_max_w),
            l2_sum_mw = r.l2_sum_mw + excluded.l2_sum_mw, l2_n = r.l2_n + excluded.l2_n,
            l2_max_w = GREATEST(r.l2_max_w, excluded.l2_max_w),
            l3_sum_mw = r.l3_sum_mw + excluded.l3_sum_mw, l3_n = r.l3_n + excluded.l3_n,
            l3_max_w = GREATEST(r.l3_max_w, excluded.l3_max_w)
        RETURNING r.station_id, r.evse_id, r.bucket_s, r.p_sum_mw, r.p_n, r.l1_sum_mw, r.l1_n,
                  r.l2_sum_mw, r.l2_n, r.l3_sum_mw, r.l3_n
    ),
    -- the site load moves by the change of each EVSE's (floored) mean
    moved AS (
        SELECT u.station_id, u.bucket_s, d.energy_mwh, d.p_max_w,
            ems_floor_div(u.p_sum_mw, u.p_n) - ems_floor_div(u.p_sum_mw - d.p_sum_mw, u.p_n - d.p_n) AS load_mw,
            ems_floor_div(u.l1_sum_mw, u.l1_n) - ems_floor_div(u.l1_sum_mw - d.l1_sum_mw, u.l1_n - d.l1_n) AS l1_mw,
            ems_floor_div(u.l2_sum_mw, u.l2_n) - ems_floor_div(u.l2_sum_mw - d.l2_sum_mw, u.l2_n - d.l2_n) AS l2_mw,
            ems_floor_div(u.l3_sum_mw, u.l3_n) - ems_floor_div(u.l3_sum_mw - d.l3_sum_mw, u.l3_n - d.l3_n) AS l3_mw
        FROM up u
        JOIN delta d ON d.station_id = u.station_id AND d.evse_id = u.evse_id AND d.bucket_s = u.bucket_s
    ),
    site_up AS (
        INSERT INTO rollup_site_5min AS r (site_id, bucket_s, energy_mwh, load_mw, l1_mw, l2_mw, l3_mw)
        SELECT pl.site_id, m.bucket_s, sum(m.energy_mwh)::BIGINT, sum(m.load_mw)::BIGINT, sum(m.l1_mw)::BIGINT,
               sum(m.l2_mw)::BIGINT, sum(m.l3_mw)::BIGINT
        FROM moved m JOIN pl ON pl.station_id = m.station_id
        GROUP BY 1, 2
        ON CONFLICT (site_id, bucket_s) DO UPDATE SET
            energy_mwh = r.energy_mwh + excluded.energy_mwh, load_mw = r.load_mw + excluded.load_mw,
            l1_mw = r.l1_mw + excluded.l1_mw, l2_mw = r.l2_mw + excluded.l2_mw, l3_mw = r.l3_mw + excluded.l3_mw
    )
    INSERT INTO rollup_station_day AS r (station_id, day, site_id, energy_mwh, peak_w)
    SELECT m.station_id, to_char((to_timestamp(m.bucket_s) AT TIME ZONE pl.tz)::date, 'YYYY-MM-DD'), pl.site_id,
           sum(m.energy_mwh)::BIGINT, GREATEST(0, max(m.p_max_w))
    FROM moved m JOIN pl ON pl.station_id = m.station_id
    GROUP BY 1, 2, 3
    ON CONFLICT (station_id, day) DO UPDATE SET
        site_id = excluded.site_id, energy_mwh = r.energy_mwh + excluded.energy_mwh,
        peak_w = GREATEST(r.peak_w, excluded.peak_w);
    RETURN NULL;
END
$fn$;

-- Rows updated in place by every batch: room on the page for HOT updates (no index changes).
ALTER TABLE rollup_register_state SET (fillfactor = 50);
ALTER TABLE rollup_site_5min SET (fillfactor = 70);
ALTER TABLE rollup_station_day SET (fillfactor = 70);

DO $$
BEGIN
    CREATE TRIGGER ems_rollup_samples AFTER INSERT ON meter_samples
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ems_rollup_new_samples();
EXCEPTION WHEN feature_not_supported OR object_not_in_prerequisite_state OR wrong_object_type THEN
    -- a TimescaleDB hypertable: no transition tables; the rollups are kept from Python
    RAISE WARNING 'meter_samples rollup trigger not created: %', SQLERRM;
END
$$;
