-- Views for analysts (docs/analytics.md): stable names and units over the rollups and raw rows.
-- Times are TIMESTAMPTZ/ISO text per back end; energy in Wh, power in W, money in minor units.

CREATE VIEW analytics_evse_5min AS
SELECT station_id, evse_id, bucket_s, energy_mwh / 1000.0 AS energy_wh,
       CASE WHEN p_n > 0 THEN p_sum_mw / 1000.0 / p_n END AS power_avg_w, p_max_w AS power_peak_w,
       CASE WHEN l1_n > 0 THEN l1_sum_mw / 1000.0 / l1_n END AS l1_avg_w, l1_max_w AS l1_peak_w,
       CASE WHEN l2_n > 0 THEN l2_sum_mw / 1000.0 / l2_n END AS l2_avg_w, l2_max_w AS l2_peak_w,
       CASE WHEN l3_n > 0 THEN l3_sum_mw / 1000.0 / l3_n END AS l3_avg_w, l3_max_w AS l3_peak_w
FROM rollup_evse_5min;

CREATE VIEW analytics_site_load_5min AS
SELECT r.site_id, r.bucket_s, r.energy_mwh / 1000.0 AS energy_wh, r.load_mw / 1000.0 AS load_w,
       r.l1_mw / 1000.0 AS l1_w, r.l2_mw / 1000.0 AS l2_w, r.l3_mw / 1000.0 AS l3_w,
       p.capacity_w, p.planned_w
FROM rollup_site_5min r LEFT JOIN analytics_site_plan p ON p.site_id = r.site_id AND p.bucket_s = r.bucket_s;

CREATE VIEW analytics_station_days AS
SELECT d.station_id, d.site_id, d.day, d.energy_mwh / 1000.0 AS energy_wh, d.in_use_us / 3600000000.0 AS hours_in_use,
       d.peak_w
FROM rollup_station_day d;

CREATE VIEW analytics_station_day_fees AS
SELECT station_id, site_id, day, currency, sessions, session_us / 3600000000.0 AS session_hours,
       energy_mwh / 1000.0 AS energy_wh, priced_minor, collected_minor
FROM rollup_station_day_fees;

CREATE VIEW analytics_user_months AS
SELECT user_id, month, currency, sessions, session_us / 3600000000.0 AS session_hours,
       energy_mwh / 1000.0 AS energy_wh, priced_minor, collected_minor
FROM rollup_user_month;

CREATE VIEW analytics_meter_samples AS
SELECT station_id, evse_id, measured_at, measurand, phase, value, context, session_id, flag
FROM meter_samples;

CREATE VIEW analytics_sessions AS
SELECT s.id AS session_id, s.station_id, s.evse_id, s.id_tag AS card_uid, s.status, s.started_at, s.stopped_at,
       s.energy_wh, c.currency, c.total_minor, c.captured_minor, c.account_id
FROM sessions s LEFT JOIN session_costs c ON c.session_id = s.id;
