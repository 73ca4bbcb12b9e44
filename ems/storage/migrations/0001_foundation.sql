-- Foundation: stations, status history, sessions, meter samples, cards, capacity signals, API keys.
-- Shared by both back ends; see docs/storage.md for the types and macros.

-- Counters for the sequence macro on SQLite (PostgreSQL uses real sequences).
CREATE TABLE ems_sequences (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

{{sequence ocpp16_transaction_id}};

CREATE TABLE stations (
    id TEXT PRIMARY KEY,
    password_hash TEXT,
    vendor TEXT,
    model TEXT,
    serial_number TEXT,
    firmware_version TEXT,
    ocpp_version TEXT,
    site_id TEXT,
    circuit_id TEXT,
    registered_at TIMESTAMPTZ,
    last_seen_at TIMESTAMPTZ,
    online BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX stations_site ON stations (site_id, circuit_id);

CREATE TABLE connector_status_history (
    id {{identity}},
    station_id TEXT NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    evse_id INTEGER NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    error_code TEXT,
    info TEXT
);

CREATE INDEX connector_status_history_station_at ON connector_status_history (station_id, at);

-- Sessions keep their station: deleting a station with sessions is refused (billing history).
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations (id),
    evse_id INTEGER NOT NULL,
    connector_id INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    id_tag TEXT,
    meter_start_wh DOUBLE PRECISION,
    meter_stop_wh DOUBLE PRECISION,
    energy_wh DOUBLE PRECISION NOT NULL DEFAULT 0,
    stopped_at TIMESTAMPTZ,
    stop_reason TEXT,
    status TEXT NOT NULL,
    departure_at TIMESTAMPTZ,
    energy_requested_wh DOUBLE PRECISION,
    ev_max_power_w DOUBLE PRECISION,
    last_power_w DOUBLE PRECISION,
    updated_at TIMESTAMPTZ,
    UNIQUE (station_id, transaction_id)
);

CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_station_started ON sessions (station_id, started_at);
CREATE INDEX sessions_active_evse ON sessions (station_id, evse_id) WHERE status = 'active';

-- Time series: no foreign keys (bulk COPY, hypertable-friendly); a sample may arrive
-- for a station or session the central system does not know (yet).
CREATE TABLE meter_samples (
    station_id TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    measured_at TIMESTAMPTZ NOT NULL,
    measurand TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    session_id TEXT,
    phase TEXT,
    context TEXT NOT NULL,
    raw_value TEXT,
    raw_unit TEXT,
    flag TEXT
);

CREATE INDEX meter_samples_session_at ON meter_samples (session_id, measured_at) WHERE session_id IS NOT NULL;
CREATE INDEX meter_samples_station_at ON meter_samples (station_id, measured_at);

CREATE TABLE cards (
    uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    mode TEXT NOT NULL,
    account_id TEXT,
    user_id TEXT,
    label TEXT,
    created_at TIMESTAMPTZ
);

CREATE TABLE capacity_signals (
    id {{identity}},
    site_id TEXT NOT NULL,
    circuit_id TEXT,
    kind TEXT NOT NULL,
    blocks {{json}} NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    message_id TEXT,
    source TEXT NOT NULL,
    accepted BOOLEAN NOT NULL,
    error TEXT
);

CREATE INDEX capacity_signals_site_received ON capacity_signals (site_id, received_at);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    user_id TEXT,
    revoked_at TIMESTAMPTZ
);
