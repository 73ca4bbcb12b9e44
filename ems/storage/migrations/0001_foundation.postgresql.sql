-- TimescaleDB when the server has it: meter_samples becomes a hypertable chunked by time,
-- so range queries and retention touch few chunks. Guarded: plain PostgreSQL (the tested
-- path) skips it, and a server that lists the extension but cannot load it (not in
-- shared_preload_libraries, no privilege) keeps a plain table and says so in a WARNING.
DO $$
DECLARE
    ext_schema TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'timescaledb is available but cannot be enabled (%); meter_samples stays a plain table', SQLERRM;
        RETURN;
    END;
    SELECT extnamespace::regnamespace::text INTO ext_schema FROM pg_extension WHERE extname = 'timescaledb';
    EXECUTE format(
        'SELECT %s.create_hypertable(%L, %L, if_not_exists => TRUE, migrate_data => TRUE)',
        ext_schema, 'meter_samples', 'measured_at'
    );
END
$$;
