DELETE FROM meter_samples a USING meter_samples b
WHERE a.ctid > b.ctid
  AND a.station_id = b.station_id
  AND a.evse_id = b.evse_id
  AND a.measured_at = b.measured_at
  AND a.measurand = b.measurand
  AND COALESCE(a.phase, '') = COALESCE(b.phase, '')
  AND a.context = b.context
  AND COALESCE(a.raw_value, '') = COALESCE(b.raw_value, '');

CREATE UNIQUE INDEX meter_samples_natural_key ON meter_samples (
    station_id, evse_id, measured_at, measurand, (COALESCE(phase, '')), context, (COALESCE(raw_value, ''))
);
