-- Driver web pages (issue 13): PINs (scrypt hashes) and signed-in browser sessions (token hashes).
CREATE TABLE driver_pins (
    user_id TEXT PRIMARY KEY REFERENCES billing_users (id) ON DELETE CASCADE,
    phone_key TEXT NOT NULL,
    pin_hash TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX driver_pins_phone ON driver_pins (phone_key);

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES billing_users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
