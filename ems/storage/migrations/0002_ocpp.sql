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
