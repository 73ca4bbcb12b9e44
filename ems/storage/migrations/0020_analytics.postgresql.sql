-- PostgreSQL: meter samples and status changes partitioned by month of their time (native
-- range partitioning), unless TimescaleDB made meter_samples a hypertable in 0001 (then it
-- stays one). ems_ensure_month_partitions creates the monthly partitions a batch needs before
-- it is written (ems/storage/rollups.py); a DEFAULT partition catches anything else.

CREATE OR REPLACE FUNCTION ems_ensure_month_partitions(parent TEXT, first_at TIMESTAMPTZ, last_at TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    m TIMESTAMPTZ := date_trunc('month', first_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    part TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid
                   WHERE c.oid = to_regclass(parent)) THEN
        RETURN;
    END IF;
    WHILE m <= last_at LOOP
        part := parent || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               part, parent, m, m + interval '1 month');
            EXCEPTION WHEN duplicate_table OR check_violation OR invalid_object_definition THEN
                -- created meanwhile by another writer, or rows of that month already sit in the
                -- DEFAULT partition: they stay there (still found, still unique).
                NULL;
            END;
        END IF;
        m := m + interval '1 month';
    END LOOP;
END
$$;

DO $$
DECLARE
    lo TIMESTAMPTZ;
    hi TIMESTAMPTZ;
    next_id BIGINT;
BEGIN
    IF to_regclass('meter_samples') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('meter_samples')
    ) AND NOT EXISTS (
        SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'
    ) THEN
        ALTER TABLE meter_samples RENAME TO meter_samples_unpartitioned;
        CREATE TABLE meter_samples (LIKE meter_samples_unpartitioned INCLUDING DEFAULTS)
            PARTITION BY RANGE (measured_at);
        CREATE TABLE meter_samples_default PARTITION OF meter_samples DEFAULT;
        SELECT min(measured_at), max(measured_at) INTO lo, hi FROM meter_samples_unpartitioned;
        IF lo IS NOT NULL THEN
            PERFORM ems_ensure_month_partitions('meter_samples', lo, hi);
        END IF;
        INSERT INTO meter_samples SELECT * FROM meter_samples_unpartitioned;
        DROP TABLE meter_samples_unpartitioned;
        CREATE UNIQUE INDEX meter_samples_natural_key ON meter_samples (
            station_id, evse_id, measured_at, measurand, (COALESCE(phase, '')), context, (COALESCE(raw_value, ''))
        );
        CREATE INDEX meter_samples_session_at ON meter_samples (session_id, measured_at) WHERE session_id IS NOT NULL;
        CREATE INDEX meter_samples_station_at ON meter_samples (station_id, measured_at);
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('connector_status_history')) THEN
        ALTER TABLE connector_status_history RENAME TO connector_status_history_unpartitioned;
        CREATE SEQUENCE connector_status_history_seq;
        CREATE TABLE connector_status_history (
            id BIGINT NOT NULL DEFAULT nextval('connector_status_history_seq'),
            station_id TEXT NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
            evse_id INTEGER NOT NULL,
            connector_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL,
            error_code TEXT,
            info TEXT,
            PRIMARY KEY (id, at)
        ) PARTITION BY RANGE (at);
        ALTER SEQUENCE connector_status_history_seq OWNED BY connector_status_history.id;
        CREATE TABLE connector_status_history_default PARTITION OF connector_status_history DEFAULT;
        SELECT min(at), max(at), max(id) INTO lo, hi, next_id FROM connector_status_history_unpartitioned;
        IF lo IS NOT NULL THEN
            PERFORM ems_ensure_month_partitions('connector_status_history', lo, hi);
            PERFORM setval('connector_status_history_seq', next_id);
        END IF;
        INSERT INTO connector_status_history SELECT * FROM connector_status_history_unpartitioned;
        DROP TABLE connector_status_history_unpartitioned;
        CREATE INDEX connector_status_history_station_at ON connector_status_history (station_id, at);
        CREATE INDEX connector_status_history_connector ON connector_status_history (station_id, evse_id, connector_id, at);
    END IF;
END
$$;

-- TimescaleDB (guarded, not exercised by the tests here): compress old chunks of the hypertable.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        BEGIN
            EXECUTE 'ALTER TABLE meter_samples SET (timescaledb.compress, timescaledb.compress_segmentby = ''station_id, evse_id'')';
            EXECUTE 'SELECT add_compression_policy(''meter_samples'', INTERVAL ''30 days'', if_not_exists => TRUE)';
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'timescaledb compression not enabled: %', SQLERRM;
        END;
    END IF;
END
$$;
