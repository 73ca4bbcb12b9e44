-- Analytics (issue 14): rollups kept incrementally as samples, status changes and priced
-- sessions arrive (ems/storage/rollups.py), and the placement they are bucketed by.
-- Buckets are epoch seconds (bucket_s: start of a 5-minute bucket, UTC) so both back ends
-- index and resample them the same way; days and months are site-local 'YYYY-MM-DD' / 'YYYY-MM'.
-- Sums are integers in milli-units (energy_mwh, *_sum_mw) or microseconds (in_use_us): a sum
-- kept incrementally in any order equals the from-scratch one exactly.

-- Which site and time zone a station's rows are bucketed by; station_id '*' is the default
-- for stations not listed. Written by the app at startup from the site files.
CREATE TABLE analytics_placement (
    station_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    timezone TEXT NOT NULL
);

-- The newest trusted total energy register reading per EVSE: a batch after it extends the
-- series without reading the samples back.
CREATE TABLE rollup_register_state (
    station_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    last_at TIMESTAMPTZ NOT NULL,
    last_wh DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (station_id, evse_id)
);

-- Per EVSE per 5 minutes. energy_mwh: register increase of every interval between consecutive
-- readings, counted in the bucket of the interval's end. Power per phase (p = total, l1..l3):
-- sum (mW, rounded per sample), count, peak (W).
CREATE TABLE rollup_evse_5min (
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
    PRIMARY KEY (station_id, evse_id, bucket_s)
);

-- Per site per 5 minutes: the measured load is the sum over the site's EVSEs of their mean
-- power in the bucket (integer mW, each EVSE mean floored), total and per phase.
CREATE TABLE rollup_site_5min (
    site_id TEXT NOT NULL,
    bucket_s BIGINT NOT NULL,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    load_mw BIGINT NOT NULL DEFAULT 0,
    l1_mw BIGINT NOT NULL DEFAULT 0,
    l2_mw BIGINT NOT NULL DEFAULT 0,
    l3_mw BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, bucket_s)
);

-- What the controller planned and the capacity in force, per site and 5-minute bucket, as
-- recorded when plans are made (the newest plan for a bucket wins). Not derived: a rebuild
-- keeps it.
CREATE TABLE analytics_site_plan (
    site_id TEXT NOT NULL,
    bucket_s BIGINT NOT NULL,
    planned_w DOUBLE PRECISION,
    capacity_w DOUBLE PRECISION,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, bucket_s)
);

-- Per station per site-local day: energy (from the EVSE buckets starting that day), time in
-- use (Charging, SuspendedEV, SuspendedEVSE, Occupied; an interval counts once the next status
-- closes it, split at local midnight), peak (the highest total power reading of any EVSE).
CREATE TABLE rollup_station_day (
    station_id TEXT NOT NULL,
    day TEXT NOT NULL,
    site_id TEXT NOT NULL,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    in_use_us BIGINT NOT NULL DEFAULT 0,
    peak_w DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, day)
);

CREATE INDEX rollup_station_day_site ON rollup_station_day (site_id, day);

-- Priced sessions per station, site-local day of their start, and currency.
CREATE TABLE rollup_station_day_fees (
    station_id TEXT NOT NULL,
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    site_id TEXT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    session_us BIGINT NOT NULL DEFAULT 0,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    priced_minor BIGINT NOT NULL DEFAULT 0,
    collected_minor BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, day, currency)
);

CREATE INDEX rollup_station_day_fees_site ON rollup_station_day_fees (site_id, day);

-- Priced sessions per user (of the account, else of the card), site-local month and currency.
CREATE TABLE rollup_user_month (
    user_id TEXT NOT NULL,
    month TEXT NOT NULL,
    currency TEXT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    session_us BIGINT NOT NULL DEFAULT 0,
    energy_mwh BIGINT NOT NULL DEFAULT 0,
    priced_minor BIGINT NOT NULL DEFAULT 0,
    collected_minor BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, month, currency)
);

CREATE INDEX connector_status_history_connector ON connector_status_history (station_id, evse_id, connector_id, at);
