DELETE FROM meter_samples WHERE rowid NOT IN (
    SELECT min(rowid) FROM meter_samples
    GROUP BY station_id, evse_id, measured_at, measurand, COALESCE(phase, ''), context, COALESCE(raw_value, '')
);

CREATE UNIQUE INDEX meter_samples_natural_key ON meter_samples (
    station_id, evse_id, measured_at, measurand, COALESCE(phase, ''), context, COALESCE(raw_value, '')
);
