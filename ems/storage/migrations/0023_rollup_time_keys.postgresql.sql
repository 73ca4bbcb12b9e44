-- PostgreSQL: the EVSE 5-minute rollup keyed by time first. A batch (a tick of every EVSE) inserts
-- one row per EVSE into the same bucket: keyed by (station, EVSE, bucket) each went to its own leaf
-- page of the key index, which 30 days of 1,000 EVSEs (8.6 million rows) make too big to stay in
-- memory; keyed by bucket first they sit together. The trigger's upsert names the same columns
-- (ON CONFLICT infers the index whatever its column order). ems reads this table by time only; an
-- analyst reading one EVSE scans its time range. Measured in docs/benchmarks/analytics.md: one day
-- of 1,000 EVSEs after 29 days stored, 14.8-18.2 s -> 12.0-13.5 s.
ALTER TABLE rollup_evse_5min DROP CONSTRAINT rollup_evse_5min_pkey;
ALTER TABLE rollup_evse_5min ADD PRIMARY KEY (bucket_s, station_id, evse_id);
