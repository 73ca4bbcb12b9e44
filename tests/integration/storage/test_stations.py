from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems.domain.session import ChargingSession
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, OcppVersion, Station
from ems.errors import Conflict, NotFound
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)

FULL = Station(
    id="CP-001",
    password_hash="pbkdf2$abc",
    vendor="ACME",
    model="Wallbox 22",
    serial_number="SN1",
    firmware_version="1.2.3",
    ocpp_version=OcppVersion.V201,
    site_id="depot",
    circuit_id="feeder-a",
    registered_at=T0,
    last_seen_at=T0 + timedelta(seconds=5),
    online=True,
)


async def test_add_get_all(storage: SqlStorage) -> None:
    await storage.stations.add(FULL)
    await storage.stations.add(Station(id="A-minimal"))
    got = await storage.stations.get("CP-001")
    assert got == FULL
    assert got is not None
    assert type(got.ocpp_version) is OcppVersion
    assert await storage.stations.get("nope") is None
    assert [s.id for s in await storage.stations.all()] == ["A-minimal", "CP-001"]


async def test_duplicate_id_is_conflict(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="x"))
    with pytest.raises(Conflict):
        await storage.stations.add(Station(id="x", vendor="other"))
    assert await storage.stations.get("x") == Station(id="x")


async def test_update_replaces_every_field(storage: SqlStorage) -> None:
    await storage.stations.add(FULL)
    changed = Station(id="CP-001", vendor="Other", online=False)
    await storage.stations.update(changed)
    assert await storage.stations.get("CP-001") == changed
    with pytest.raises(NotFound):
        await storage.stations.update(Station(id="missing"))


async def test_delete(storage: SqlStorage) -> None:
    await storage.stations.add(FULL)
    await storage.stations.record_status(ConnectorStatusRecord("CP-001", 1, 1, ConnectorStatus.AVAILABLE, T0))
    assert await storage.stations.delete("CP-001") is True
    assert await storage.stations.delete("CP-001") is False
    assert await storage.stations.get("CP-001") is None
    assert await storage.stations.status_history("CP-001") == []


async def test_delete_with_sessions_is_conflict(storage: SqlStorage) -> None:
    await storage.stations.add(FULL)
    await storage.sessions.add(ChargingSession("s1", "CP-001", 1, 1, "t1", T0))
    with pytest.raises(Conflict):
        await storage.stations.delete("CP-001")
    assert await storage.stations.get("CP-001") == FULL


async def test_mark_seen(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="cp"))
    await storage.stations.mark_seen("cp", T0, online=True)
    assert await storage.stations.get("cp") == Station(id="cp", last_seen_at=T0, online=True)
    await storage.stations.mark_seen("cp", T0 + timedelta(minutes=1), online=False)
    assert await storage.stations.get("cp") == Station(id="cp", last_seen_at=T0 + timedelta(minutes=1), online=False)
    with pytest.raises(NotFound):
        await storage.stations.mark_seen("ghost", T0, online=True)


async def test_status_history_newest_first(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="cp"))
    await storage.stations.add(Station(id="other"))
    records = [
        ConnectorStatusRecord("cp", 1, 1, ConnectorStatus.AVAILABLE, T0),
        ConnectorStatusRecord("cp", 1, 1, ConnectorStatus.PREPARING, T0 + timedelta(seconds=10)),
        ConnectorStatusRecord("cp", 2, 1, ConnectorStatus.FAULTED, T0 + timedelta(seconds=10), "GroundFailure", "x"),
        ConnectorStatusRecord("cp", 1, 1, ConnectorStatus.CHARGING, T0 + timedelta(seconds=20)),
    ]
    for record in records:
        await storage.stations.record_status(record)
    await storage.stations.record_status(ConnectorStatusRecord("other", 1, 1, ConnectorStatus.AVAILABLE, T0))
    history = await storage.stations.status_history("cp")
    # Same timestamp: the one recorded later comes first.
    assert history == [records[3], records[2], records[1], records[0]]
    assert type(history[0].status) is ConnectorStatus
    assert await storage.stations.status_history("cp", limit=2) == [records[3], records[2]]


async def test_status_for_unknown_station_is_not_found(storage: SqlStorage) -> None:
    with pytest.raises(NotFound):
        await storage.stations.record_status(ConnectorStatusRecord("ghost", 1, 1, ConnectorStatus.AVAILABLE, T0))
