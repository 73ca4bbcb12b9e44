-- Billing: users, prepaid accounts, the double-entry ledger, holds, idempotency keys,
-- tariffs and their assignments, per-session costs. Money is BIGINT minor units (exact).
-- The ledger is append-only: a balance is SUM(ledger_entries.amount_minor) per book.

{{sequence ledger_seq}};

CREATE TABLE billing_users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    user_group TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE billing_accounts (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES billing_users (id),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX billing_accounts_user ON billing_accounts (user_id);

-- One row per movement; *_after_minor is the account's balance right after it (an
-- append-only snapshot for statements and idempotent replays, never updated).
CREATE TABLE ledger_movements (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES billing_accounts (id),
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    hold_id TEXT,
    session_id TEXT,
    reference TEXT,
    memo TEXT NOT NULL,
    available_after_minor BIGINT NOT NULL,
    held_after_minor BIGINT NOT NULL,
    uncollected_after_minor BIGINT NOT NULL
);

CREATE INDEX ledger_movements_account_seq ON ledger_movements (account_id, seq);
CREATE INDEX ledger_movements_session ON ledger_movements (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE ledger_entries (
    movement_id TEXT NOT NULL REFERENCES ledger_movements (id),
    line_no INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    book TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    PRIMARY KEY (movement_id, line_no)
);

CREATE INDEX ledger_entries_account_book ON ledger_entries (account_id, book);

CREATE TABLE ledger_holds (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES billing_accounts (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    id_tag TEXT,
    station_id TEXT,
    evse_id INTEGER,
    session_id TEXT,
    captured_minor BIGINT NOT NULL,
    settled_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX ledger_holds_session ON ledger_holds (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX ledger_holds_account_status ON ledger_holds (account_id, status);
CREATE INDEX ledger_holds_open_tag ON ledger_holds (id_tag) WHERE status = 'open';

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    movement_id TEXT NOT NULL REFERENCES ledger_movements (id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

CREATE TABLE tariffs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    definition {{json}} NOT NULL
);

CREATE TABLE tariff_assignments (
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    tariff_id TEXT NOT NULL REFERENCES tariffs (id),
    PRIMARY KEY (scope, scope_id)
);

CREATE TABLE session_costs (
    session_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    account_id TEXT,
    card_uid TEXT,
    hold_id TEXT,
    currency TEXT NOT NULL,
    total_minor BIGINT NOT NULL,
    captured_minor BIGINT NOT NULL,
    uncollected_minor BIGINT NOT NULL,
    energy_wh {{decimal}} NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    stopped_at TIMESTAMPTZ NOT NULL,
    priced_at TIMESTAMPTZ NOT NULL,
    cdr {{json}} NOT NULL
);

CREATE INDEX session_costs_station_started ON session_costs (station_id, started_at);
CREATE INDEX session_costs_account_started ON session_costs (account_id, started_at);
