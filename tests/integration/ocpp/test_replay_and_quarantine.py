"""The applier after a crash (both back ends): a replayed journal stores every sample and session once,
poison records are quarantined once and never stop the line, a record storage refuses is quarantined
while the rest of its batch is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ems.bus import EventBus
from ems.clock import FakeClock
from ems.domain.quarantine import QuarantineSource
from ems.domain.session import SessionStatus
from ems.domain.station import OcppVersion, Station
from ems.ocpp.applier import Applier
from ems.ocpp.journal import Journal, Record
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
V16 = OcppVersion.V16


def _records(station: str) -> list[Record]:
    def rec(seq: int, action: str, payload: dict[str, Any], response: dict[str, Any] | None = None) -> Record:
        return Record(seq, station, V16, action, payload, response or {}, T0 + timedelta(seconds=seq))

    def mv(seq: int, wh: int) -> Record:
        at = (T0 + timedelta(seconds=seq)).isoformat()
        return rec(
            seq,
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 41,
                "meterValue": [
                    {
                        "timestamp": at,
                        "sampledValue": [
                            {"value": str(wh)},
                            {"value": "7.2", "unit": "kW", "measurand": "Power.Active.Import"},
                        ],
                    }
                ],
            },
        )

    start = {"connectorId": 1, "idTag": "CARD", "meterStart": 1000, "timestamp": T0.isoformat()}
    stop = {"transactionId": 41, "meterStop": 4000, "timestamp": (T0 + timedelta(seconds=9)).isoformat()}
    return [
        rec(1, "StartTransaction", start, {"transactionId": 41, "idTagInfo": {"status": "Accepted"}}),
        mv(2, 2000),
        mv(3, 3000),
        # schema-valid poison: a connector number no station has (int overflow in storage before issue 10)
        rec(4, "StatusNotification", {"connectorId": 10**15, "errorCode": "NoError", "status": "Available"}),
        rec(
            5,
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "9999-12-31T23:59:59-05:00"},
        ),
        rec(9, "StopTransaction", stop),
    ]


async def _applier(storage: SqlStorage) -> tuple[Applier, Journal]:
    journal = await Journal.open(None)
    return Applier(journal, storage, EventBus(), FakeClock(T0)), journal


async def test_a_replayed_journal_stores_everything_once(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="CP-REPLAY"))
    records = _records("CP-REPLAY")
    first, j1 = await _applier(storage)
    await first.apply(records)
    # kill -9 after the batch was stored, before the journal ack was on disk: a new process
    # (a fresh applier, nothing in memory) gets the same records again, in pieces.
    second, j2 = await _applier(storage)
    await second.apply(records[:2])
    await second.apply(records[2:])
    [session] = await storage.sessions.query(station_id="CP-REPLAY")
    assert session.status is SessionStatus.COMPLETED and session.energy_wh == 3000.0
    samples = await storage.samples.for_session(session.id)
    assert len(samples) == 4  # two readings of two measurands, once each
    [poison] = await storage.quarantine.list(source=QuarantineSource.OCPP)
    assert poison.station_id == "CP-REPLAY" and "connectorId" in poison.reason
    assert first.stats.quarantined == 1 and second.stats.quarantined == 1 and first.stats.time_corrected == 1
    history = await storage.stations.status_history("CP-REPLAY")
    assert [h.at for h in history] == [T0 + timedelta(seconds=5)] * len(history)  # the 9999 time: receive time
    for j in (j1, j2):
        await j.close()


async def test_a_record_storage_refuses_is_quarantined_and_the_rest_stored(storage: SqlStorage) -> None:
    await storage.stations.add(Station(id="CP-KEPT"))
    kept = _records("CP-KEPT")[:3]
    gone = _records("CP-GONE")[4:5]  # a status of a station that is not registered: storage refuses it
    applier, journal = await _applier(storage)
    await applier.apply([*kept, *gone])
    assert applier.stats.fallbacks == 1 and applier.stats.quarantined == 1
    [session] = await storage.sessions.query(station_id="CP-KEPT")
    assert len(await storage.samples.for_session(session.id)) == 4
    [entry] = await storage.quarantine.list()
    assert entry.station_id == "CP-GONE" and "cannot be stored" in entry.reason
    await journal.close()


async def test_a_bug_in_the_applier_quarantines_the_batch_and_the_line_goes_on(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.stations.add(Station(id="CP-BUG"))
    applier, journal = await _applier(storage)
    records = _records("CP-BUG")[:3]

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(applier.book, "forget_completed", broken)
    task = asyncio.create_task(applier.run())
    try:
        for r in records:
            await journal.append(r.station_id, r.version, r.action, r.payload, r.response, r.received_at)
        await asyncio.wait_for(_drained(applier, journal), 10)
        assert not task.done() and applier.stats.quarantined >= 1
        assert await storage.quarantine.count(QuarantineSource.OCPP) == applier.stats.quarantined
        monkeypatch.undo()
        more = _records("CP-BUG")[4:5]
        await journal.append(more[0].station_id, V16, more[0].action, more[0].payload, {}, more[0].received_at)
        await asyncio.wait_for(_drained(applier, journal), 10)
        assert applier.stats.records == 4 and len(await storage.stations.status_history("CP-BUG")) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await journal.close()


async def _drained(applier: Applier, journal: Journal) -> None:
    """As ``OcppRuntime.drained``: until everything journaled is applied."""
    while journal.backlog() or journal.committed > applier.applied:
        applier.idle.clear()
        await applier.idle.wait()
