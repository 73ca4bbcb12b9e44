from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.config import Settings
from ems.domain.session import ChargingSession, SessionStatus
from ems.domain.station import Station
from ems.errors import Conflict, NotFound
from ems.storage.factory import SqlStorage, open_storage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _session(n: int, *, station: str = "cp1", evse: int = 1, minutes: int = 0, **kw: object) -> ChargingSession:
    return ChargingSession(
        id=f"s{n}",
        station_id=station,
        evse_id=evse,
        connector_id=1,
        transaction_id=f"tx{n}",
        started_at=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def stations(storage: SqlStorage) -> SqlStorage:
    await storage.stations.add(Station(id="cp1"))
    await storage.stations.add(Station(id="cp2"))
    return storage


async def test_every_field_round_trips(stations: SqlStorage) -> None:
    full = ChargingSession(
        id="s-full",
        station_id="cp1",
        evse_id=2,
        connector_id=1,
        transaction_id="42",
        started_at=T0,
        id_tag="04A1B2C3",
        meter_start_wh=1000.5,
        meter_stop_wh=12345.25,
        energy_wh=11344.75,
        stopped_at=T0 + timedelta(hours=2),
        stop_reason="EVDisconnected",
        status=SessionStatus.COMPLETED,
        departure_at=T0 + timedelta(hours=8),
        energy_requested_wh=30000.0,
        ev_max_power_w=11000.0,
        last_power_w=7360.0,
        updated_at=T0 + timedelta(hours=2, seconds=1),
    )
    await stations.sessions.add(full)
    got = await stations.sessions.get("s-full")
    assert got == full
    assert got is not None
    assert type(got.status) is SessionStatus
    assert await stations.sessions.get("nope") is None


async def test_conflicts(stations: SqlStorage) -> None:
    await stations.sessions.add(_session(1))
    with pytest.raises(Conflict):
        await stations.sessions.add(_session(1, station="cp2"))  # same id
    with pytest.raises(Conflict):
        await stations.sessions.add(ChargingSession("other", "cp1", 1, 1, "tx1", T0))  # same (station, transaction)
    await stations.sessions.add(ChargingSession("s-cp2", "cp2", 1, 1, "tx1", T0))  # same transaction id elsewhere: fine
    with pytest.raises(Conflict):
        await stations.sessions.add(_session(9, station="unknown-station"))


async def test_find_by_transaction(stations: SqlStorage) -> None:
    await stations.sessions.add(_session(1))
    await stations.sessions.add(ChargingSession("s-cp2", "cp2", 1, 1, "tx1", T0))
    found = await stations.sessions.find_by_transaction("cp2", "tx1")
    assert found is not None
    assert found.id == "s-cp2"
    assert await stations.sessions.find_by_transaction("cp1", "tx-none") is None


async def test_active_for_evse_and_update(stations: SqlStorage) -> None:
    first = _session(1, evse=1)
    await stations.sessions.add(first)
    await stations.sessions.add(_session(2, evse=2))
    active = await stations.sessions.active_for_evse("cp1", 1)
    assert active == first

    done = replace(first, status=SessionStatus.COMPLETED, stopped_at=T0 + timedelta(hours=1))
    await stations.sessions.update(done)
    assert await stations.sessions.get("s1") == done
    assert await stations.sessions.active_for_evse("cp1", 1) is None
    second = _session(3, evse=1, minutes=70)
    await stations.sessions.add(second)
    assert await stations.sessions.active_for_evse("cp1", 1) == second

    with pytest.raises(NotFound):
        await stations.sessions.update(_session(99))


async def test_query_filters_newest_first(stations: SqlStorage) -> None:
    sessions = [
        _session(1, minutes=0),
        _session(2, minutes=10, status=SessionStatus.COMPLETED),
        _session(3, minutes=20, station="cp2"),
        _session(4, minutes=30, evse=2),
    ]
    for s in sessions:
        await stations.sessions.add(s)

    def ids(result: list[ChargingSession]) -> list[str]:
        return [s.id for s in result]

    assert ids(await stations.sessions.query()) == ["s4", "s3", "s2", "s1"]
    assert ids(await stations.sessions.query(station_id="cp1")) == ["s4", "s2", "s1"]
    assert ids(await stations.sessions.query(since=T0 + timedelta(minutes=10))) == ["s4", "s3", "s2"]
    assert ids(await stations.sessions.query(until=T0 + timedelta(minutes=20))) == ["s2", "s1"]
    assert ids(await stations.sessions.query(active_only=True)) == ["s4", "s3", "s1"]
    assert ids(await stations.sessions.query(station_id="cp1", active_only=True, limit=1)) == ["s4"]
    window = await stations.sessions.query(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=25))
    assert ids(window) == ["s3", "s2"]


async def test_transaction_ids_unique_increasing_and_concurrent(storage: SqlStorage) -> None:
    first = await storage.sessions.next_transaction_id()
    second = await storage.sessions.next_transaction_id()
    assert 0 < first < second
    many = await asyncio.gather(*(storage.sessions.next_transaction_id() for _ in range(40)))
    assert len(set(many)) == 40
    assert min(many) > second


async def test_transaction_ids_survive_restart(tmp_path: Path) -> None:
    settings = Settings(database_url=None, data_dir=tmp_path)
    storage = await open_storage(settings)
    issued = [await storage.sessions.next_transaction_id() for _ in range(3)]
    await storage.close()
    storage = await open_storage(settings)
    try:
        assert await storage.sessions.next_transaction_id() > max(issued)
    finally:
        await storage.close()


async def test_transaction_ids_unique_across_two_processes_worth_of_connections(pg_schema_url: str) -> None:
    a = await open_storage(Settings(database_url=pg_schema_url))
    b = await open_storage(Settings(database_url=pg_schema_url))
    try:
        ids = await asyncio.gather(*(s.sessions.next_transaction_id() for s in (a, b) * 20))
        assert len(set(ids)) == 40
    finally:
        await a.close()
        await b.close()


async def test_sqlite_transaction_ids_unique_across_two_connections(tmp_path: Path) -> None:
    settings = Settings(database_url=None, data_dir=tmp_path)
    a = await open_storage(settings)
    b = await open_storage(settings)
    try:
        ids = await asyncio.gather(*(s.sessions.next_transaction_id() for s in (a, b) * 20))
        assert len(set(ids)) == 40
    finally:
        await a.close()
        await b.close()


async def test_finished_sessions_for_the_estimates(stations: SqlStorage) -> None:
    done = {"status": SessionStatus.COMPLETED}
    await stations.sessions.add(_session(1, id_tag="A", stopped_at=T0 + timedelta(hours=8), energy_wh=9000.0, **done))
    await stations.sessions.add(
        _session(2, station="cp2", minutes=60, id_tag="B", stopped_at=T0 + timedelta(hours=9), **done)
    )
    await stations.sessions.add(_session(3, minutes=-3 * 24 * 60, id_tag="A", stopped_at=T0, **done))  # too old
    await stations.sessions.add(_session(4, evse=2, minutes=30, id_tag="A"))  # still active
    since = T0 - timedelta(days=1)
    got = await stations.sessions.finished(since=since)
    assert [s.id for s in got] == ["s2", "s1"]  # newest first, no active one, none before `since`
    assert got[1].energy_wh == 9000.0 and got[1].stopped_at == T0 + timedelta(hours=8)
    assert [s.id for s in await stations.sessions.finished(since=since, id_tag="A")] == ["s1"]
    assert [s.id for s in await stations.sessions.finished(since=since - timedelta(days=5), id_tag="A")] == ["s1", "s3"]
    assert [s.id for s in await stations.sessions.finished(since=since, limit=1)] == ["s2"]
