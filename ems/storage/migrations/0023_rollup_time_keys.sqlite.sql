-- SQLite (PostgreSQL: 0023_rollup_time_keys.postgresql.sql): the rollups a batch of samples
-- writes are stored in their key's order (WITHOUT ROWID:
-- one b-tree per table instead of a rowid table plus a key index), and the two a batch writes
-- one row per EVSE / per station into are keyed by time first. A batch (a tick of every EVSE)
-- inserts one EVSE row per EVSE into the same bucket and updates each station's row of the same
-- day: keyed by station first, each went to its own leaf page (as many dirty pages per commit as
-- EVSEs, each written to the WAL); keyed by time first they sit together. Station days keep an
-- index by site and one by station; the EVSE rollup has none by EVSE (one would be as scattered as
-- the old key: ems reads it by time only, an analyst reading one EVSE scans its time range).
-- Measured in docs/benchmarks/analytics.md.
DROP VIEW analytics_evse_5min;

CREATE TABLE rollup_evse_5min_by_time (
    station_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    bucket_s BIGINT NOT NULL,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    p_sum_mw BIGINT NOT NULL DEFAULT 0,
    p_n INTEGER NOT NULL DEFAULT 0,
    p_max_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    l1_sum_mw BIGINT NOT NULL DEFAULT 0,
    l1_n INTEGER NOT NULL DEFAULT 0,
    l1_max_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    l2_sum_mw BIGINT NOT NULL DEFAULT 0,
    l2_n INTEGER NOT NULL DEFAULT 0,
    l2_max_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    l3_sum_mw BIGINT NOT NULL DEFAULT 0,
    l3_n INTEGER NOT NULL DEFAULT 0,
    l3_max_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_s, station_id, evse_id)
) WITHOUT ROWID;

INSERT INTO rollup_evse_5min_by_time SELECT
    station_id, evse_id, bucket_s, energy_mwh, p_sum_mw, p_n, p_max_w, l1_sum_mw, l1_n, l1_max_w,
    l2_sum_mw, l2_n, l2_max_w, l3_sum_mw, l3_n, l3_max_w
FROM rollup_evse_5min;

DROP TABLE rollup_evse_5min;
ALTER TABLE rollup_evse_5min_by_time RENAME TO rollup_evse_5min;

CREATE VIEW analytics_evse_5min AS
SELECT station_id, evse_id, bucket_s, energy_mwh / 1000.0 AS energy_wh,
       CASE WHEN p_n > 0 THEN p_sum_mw / 1000.0 / p_n END AS power_avg_w, p_max_w AS power_peak_w,
       CASE WHEN l1_n > 0 THEN l1_sum_mw / 1000.0 / l1_n END AS l1_avg_w, l1_max_w AS l1_peak_w,
       CASE WHEN l2_n > 0 THEN l2_sum_mw / 1000.0 / l2_n END AS l2_avg_w, l2_max_w AS l2_peak_w,
       CASE WHEN l3_n > 0 THEN l3_sum_mw / 1000.0 / l3_n END AS l3_avg_w, l3_max_w AS l3_peak_w
FROM rollup_evse_5min;

CREATE TABLE rollup_register_state_new (
    station_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    last_at TIMESTAMPTZ NOT NULL,
    last_wh DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (station_id, evse_id)
) WITHOUT ROWID;
INSERT INTO rollup_register_state_new SELECT station_id, evse_id, last_at, last_wh FROM rollup_register_state;
DROP TABLE rollup_register_state;
ALTER TABLE rollup_register_state_new RENAME TO rollup_register_state;

DROP VIEW analytics_site_load_5min;
CREATE TABLE rollup_site_5min_new (
    site_id TEXT NOT NULL,
    bucket_s BIGINT NOT NULL,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    load_mw BIGINT NOT NULL DEFAULT 0,
    l1_mw BIGINT NOT NULL DEFAULT 0,
    l2_mw BIGINT NOT NULL DEFAULT 0,
    l3_mw BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, bucket_s)
) WITHOUT ROWID;
INSERT INTO rollup_site_5min_new SELECT site_id, bucket_s, energy_mwh, load_mw, l1_mw, l2_mw, l3_mw FROM rollup_site_5min;
DROP TABLE rollup_site_5min;
ALTER TABLE rollup_site_5min_new RENAME TO rollup_site_5min;
CREATE VIEW analytics_site_load_5min AS
SELECT r.site_id, r.bucket_s, r.energy_mwh / 1000.0 AS energy_wh, r.load_mw / 1000.0 AS load_w,
       r.l1_mw / 1000.0 AS l1_w, r.l2_mw / 1000.0 AS l2_w, r.l3_mw / 1000.0 AS l3_w,
       p.capacity_w, p.planned_w
FROM rollup_site_5min r LEFT JOIN analytics_site_plan p ON p.site_id = r.site_id AND p.bucket_s = r.bucket_s;

DROP VIEW analytics_station_days;
CREATE TABLE rollup_station_day_new (
    station_id TEXT NOT NULL,
    day TEXT NOT NULL,
    site_id TEXT NOT NULL,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    in_use_us BIGINT NOT NULL DEFAULT 0,
    peak_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (day, station_id)
) WITHOUT ROWID;
INSERT INTO rollup_station_day_new SELECT station_id, day, site_id, energy_mwh, in_use_us, peak_w FROM rollup_station_day;
DROP TABLE rollup_station_day;
ALTER TABLE rollup_station_day_new RENAME TO rollup_station_day;
CREATE INDEX rollup_station_day_site ON rollup_station_day (site_id, day);
CREATE INDEX rollup_station_day_station ON rollup_station_day (station_id, day);
CREATE VIEW analytics_station_days AS
SELECT d.station_id, d.site_id, d.day, d.energy_mwh / 1000.0 AS energy_wh, d.in_use_us / 3600000000.0 AS hours_in_use,
       d.peak_w
FROM rollup_station_day d;
