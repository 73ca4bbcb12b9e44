-- TimescaleDB when the server has it (guarded: plain PostgreSQL is the tested path).
-- A hypertable chunks meter_samples by time, so range queries and retention touch few chunks.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('meter_samples', 'measured_at', if_not_exists => TRUE, migrate_data => TRUE);
    END IF;
END
$$;
