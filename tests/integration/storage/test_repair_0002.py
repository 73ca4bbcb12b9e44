"""Migration 0002 repairs values stored before the edge checks (inf energy from "1e306" kWh), both back ends."""

from __future__ import annotations

from datetime import UTC, datetime

from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.station import Station
from ems.storage.factory import SqlStorage
from ems.storage.migrate import discover

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


async def test_the_repair_statements_of_0002(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="CP-OLD"))
    inf = float("inf")
    await storage.sessions.add(
        ChargingSession("s-old", "CP-OLD", 1, 1, "7", T0, meter_start_wh=1000.0, meter_stop_wh=inf, energy_wh=inf)
    )
    await storage.db.execute(
        "INSERT INTO meter_samples (station_id, evse_id, measured_at, measurand, value, session_id, context, raw_value)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("CP-OLD", 1, T0, Measurand.ENERGY_IMPORT_REGISTER.value, inf, "s-old", "Sample.Periodic", "1e306"),
    )
    [migration] = [m for m in discover() if m.version == 2]
    repairs = [line for line in migration.shared.splitlines() if line.startswith("UPDATE ")]
    assert len(repairs) == 4
    for statement in repairs:
        await storage.db.execute(statement.rstrip(";"))
    session = await storage.sessions.get("s-old")
    assert session is not None and (session.energy_wh, session.meter_start_wh, session.meter_stop_wh) == (
        0.0,
        1000.0,
        None,
    )
    [sample] = await storage.samples.for_session("s-old")
    assert isinstance(sample, MeterSample) and (sample.value, sample.flag, sample.raw_value) == (
        0.0,
        "out_of_range",
        "1e306",
    )
