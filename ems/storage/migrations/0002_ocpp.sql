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
