"""What the spec demands of a central system under bad input and a briefly unavailable database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import websockets

from ems.clock import FakeClock
from ems.domain.events import SessionEnded
from ems.domain.session import SessionStatus
from ems.domain.station import OcppVersion, Station
from ems.errors import StorageUnavailable
from ems.ocpp.journal import LOCAL_TRANSACTION_ID_BASE
from ems.ocpp.server import OcppServerConfig
from ems.sim.ev import Ev
from ems.storage.factory import SqlStorage
from tests.integration.ocpp.conftest import WAIT_S, OcppEnv, start_env, stop_env

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

BAD_FRAMES_16: list[tuple[str, str, str]] = [
    ("not json at all", "-1", "FormatViolation"),
    ('{"an": "object"}', "-1", "ProtocolError"),
    ('[2, "short"]', "short", "ProtocolError"),
    ('[2, "p1", "Heartbeat", []]', "p1", "ProtocolError"),
    ('[2, "u1", "NoSuchAction", {}]', "u1", "NotSupported"),
    ('[2, "u2", "ClearCache", {}]', "u2", "NotImplemented"),  # a 1.6 action, but one a station does not send
    ('[2, "s1", "MeterValues", {"meterValue": []}]', "s1", "ProtocolError"),  # required connectorId missing
    (
        '[2, "s2", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]',
        "s2",
        "TypeConstraintViolation",
    ),
    (
        '[2, "s3", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m", "extra": 1}]',
        "s3",
        "FormatViolation",
    ),
    (
        '[2, "s4", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"}]',
        "s4",
        "FormatViolation",
    ),
]


async def test_bad_frames_get_callerror_and_connection_stays_usable(env: OcppEnv) -> None:
    await env.storage.stations.add(Station(id="CP-BAD"))
    async with websockets.connect(f"{env.url}/CP-BAD", subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
        for frame, unique_id, code in BAD_FRAMES_16:
            await ws.send(frame)
            answer = json.loads(await ws.recv())
            assert answer[:3] == [4, unique_id, code], frame
        await ws.send('[2, "ok", "Heartbeat", {}]')
        answer = json.loads(await ws.recv())
        assert answer[0] == 3 and answer[1] == "ok" and "currentTime" in answer[2]


async def test_bad_frames_v201(env: OcppEnv) -> None:
    await env.storage.stations.add(Station(id="CP-BAD2"))
    async with websockets.connect(f"{env.url}/CP-BAD2", subprotocols=[websockets.Subprotocol("ocpp2.0.1")]) as ws:
        await ws.send('[2, "t1", "TransactionEvent", {"eventType": "Started"}]')
        assert json.loads(await ws.recv())[:3] == [4, "t1", "ProtocolError"]
        await ws.send('[2, "t2", "StartTransaction", {}]')  # a 1.6 action on a 2.0.1 connection
        assert json.loads(await ws.recv())[:3] == [4, "t2", "NotSupported"]
        await ws.send('[2, "t3", "DataTransfer", {"vendorId": "acme"}]')
        assert json.loads(await ws.recv()) == [3, "t3", {"status": "UnknownVendorId"}]


class _Flaky:
    """Wraps a store; while ``down.is_set`` every call raises ``StorageUnavailable``."""

    def __init__(self, inner: Any, down: list[bool]) -> None:
        self._inner = inner
        self._down = down

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._down[0]:
                raise StorageUnavailable("database restarting (injected)")
            return await target(*args, **kwargs)

        return call


class FlakyStorage:
    """Real storage with sessions, samples and stations switchable to unavailable (cards stay up)."""

    def __init__(self, inner: SqlStorage) -> None:
        self.down = [False]
        self.inner = inner
        self.stations = _Flaky(inner.stations, self.down)
        self.sessions = _Flaky(inner.sessions, self.down)
        self.samples = _Flaky(inner.samples, self.down)
        self.cards = inner.cards
        self.signals = inner.signals
        self.api_keys = inner.api_keys
        self.quarantine = inner.quarantine
        self.backend = inner.backend
        self.transaction = inner.transaction

    async def health(self) -> None:
        await self.inner.health()

    async def close(self) -> None:
        await self.inner.close()


async def test_transaction_answered_while_database_down(
    storage: SqlStorage, tmp_path: Path, version: OcppVersion
) -> None:
    flaky = FlakyStorage(storage)
    env, stop, task = await start_env(flaky, tmp_path / "j.db", OcppServerConfig(port=0))  # type: ignore[arg-type]
    try:
        clock = FakeClock(T0)
        sim = await env.booted("CP-DOWN", version, clock=clock)
        await env.drained()
        flaky.down[0] = True
        tx = await sim.start(1, "GOOD-CARD", Ev(soc=0.3, max_power_w=11_000))
        for _ in range(3):
            clock.advance(600)
            sim.advance(600)
            await sim.send_meter_values(1)
        await sim.stop(1)
        await sim.wait_sent()  # every transaction message answered while the database was down
        assert sim.stats.call_errors == 0
        if version is OcppVersion.V16:
            assert tx.id is not None and int(tx.id) > LOCAL_TRANSACTION_ID_BASE
        await asyncio.wait_for(env.runtime.applier.retrying.wait(), WAIT_S)  # the applier has met the outage
        flaky.down[0] = False
        ended = await env.wait_for(SessionEnded, lambda e: e.station_id == "CP-DOWN", within_s=20)
        assert ended.energy_wh == pytest.approx(5_500, abs=1)
        await env.drained()
        session = await storage.sessions.get(ended.session_id)
        assert session is not None and session.status is SessionStatus.COMPLETED
        assert len(await storage.samples.for_session(session.id)) >= 4
        assert env.runtime.applier.retries > 0
    finally:
        await stop_env(env, stop, task)


async def test_journal_replays_after_restart(storage: SqlStorage, tmp_path: Path) -> None:
    """Messages journaled but not yet stored when the process stops are stored on the next start."""
    flaky = FlakyStorage(storage)
    journal = tmp_path / "j.db"
    env, stop, task = await start_env(flaky, journal, OcppServerConfig(port=0), drain_s=0.1)  # type: ignore[arg-type]
    clock = FakeClock(T0)
    sim = await env.booted("CP-CRASH", OcppVersion.V201, clock=clock)
    await env.drained()
    flaky.down[0] = True
    await sim.start(1, "GOOD-CARD")
    clock.advance(60)
    sim.advance(60)
    await sim.stop(1)
    await sim.wait_sent()
    await sim.close()
    stop.set()
    await task  # shutdown gives up draining after its timeout; the records stay in the journal
    assert await storage.sessions.query(station_id="CP-CRASH") == []
    env2, stop2, task2 = await start_env(storage, journal, OcppServerConfig(port=0), cards=False)
    try:
        ended = await env2.wait_for(SessionEnded, lambda e: e.station_id == "CP-CRASH")
        await env2.drained()
        assert (await storage.sessions.get(ended.session_id)) is not None
    finally:
        await stop_env(env2, stop2, task2)
