-- OCPP input (issue 10): the quarantine of inbound messages that cannot be applied.
-- id is a natural key (hash of what was received): quarantining the same message again
-- after a restart stores it once (INSERT ... ON CONFLICT DO NOTHING).

CREATE TABLE quarantined_messages (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    station_id TEXT,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX quarantined_messages_at ON quarantined_messages (quarantined_at, id);

-- Meter samples are stored once (issue 10: a kill -9 replay stored 6 of 2,283 twice). The
-- natural key of a reading: station, EVSE, instant, measurand, phase, context and the raw value
-- the station sent (two locations of one measurand at one instant differ in value; a replay or
-- a station's resend does not). Writers insert with ON CONFLICT DO NOTHING. Duplicates stored
-- before this migration are removed first (per dialect, in 0002_ocpp.sqlite.sql /
-- 0002_ocpp.postgresql.sql, which run after this file: so the index is created there).

-- Values stored before the edge checks existed that no reading can have (issue 10: "1e306" kWh
-- stored sessions.energy_wh as inf, and billing then failed on every restart): energy out of
-- the register's bounds (0..1e11 Wh) restarts from the start register; an infinite sample value
-- becomes 0 flagged out_of_range, as the edge now stores it (raw value kept).
UPDATE sessions SET energy_wh = 0 WHERE NOT (energy_wh >= 0 AND energy_wh <= 1e11);
UPDATE sessions SET meter_start_wh = NULL WHERE NOT (meter_start_wh >= 0 AND meter_start_wh <= 1e11);
UPDATE sessions SET meter_stop_wh = NULL WHERE NOT (meter_stop_wh >= 0 AND meter_stop_wh <= 1e11);
UPDATE meter_samples SET value = 0, flag = 'out_of_range' WHERE NOT (value >= -1e300 AND value <= 1e300);
