"""Transactions end to end: meter values, stop, offline queue, duplicates, other stations' transactions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.v16 import call as c16
from ocpp.v201.enums import TransactionEventEnumType

from ems.clock import FakeClock
from ems.domain.events import MeterSampled, SessionEnded, SessionStarted
from ems.domain.session import Measurand, SessionStatus
from ems.domain.station import OcppVersion
from ems.ocpp import translate as t
from ems.sim import messages201 as m201
from ems.sim.ev import Ev
from tests.integration.ocpp.conftest import OcppEnv

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


async def test_full_transaction_with_meter_values(env: OcppEnv, version: OcppVersion) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-TX", version, clock=clock)
    tx = await sim.start(1, "GOOD-CARD", Ev(soc=0.2, max_power_w=11_000))
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-TX")
    for _ in range(3):
        clock.advance(600)
        sim.advance(600)
        await sim.send_meter_values(1)
    sampled = await env.wait_for(
        MeterSampled, lambda e: e.station_id == "CP-TX" and any(s.measurand is Measurand.SOC for s in e.samples)
    )
    assert {s.measurand for s in sampled.samples} >= {
        Measurand.ENERGY_IMPORT_REGISTER,
        Measurand.POWER_IMPORT,
        Measurand.SOC,
    }
    await sim.stop(1)
    ended = await env.wait_for(SessionEnded, lambda e: e.session_id == started.session_id)
    assert ended.energy_wh == pytest.approx(5_500, abs=1)  # 11 kW for 30 min
    await env.drained()
    session = await env.storage.sessions.get(started.session_id)
    assert session is not None and session.status is SessionStatus.COMPLETED
    assert session.transaction_id == tx.id and session.id_tag == "GOOD-CARD"
    assert session.meter_stop_wh == pytest.approx(1_005_500, abs=1)
    assert session.started_at == T0 and session.stopped_at == clock.now()
    samples = await env.storage.samples.for_session(session.id)
    registers = [s.value for s in samples if s.measurand is Measurand.ENERGY_IMPORT_REGISTER]
    assert registers == sorted(registers) and len(registers) >= 4


async def test_reconnect_mid_transaction_with_offline_queue(env: OcppEnv, version: OcppVersion) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-OFF", version, clock=clock)
    await sim.start(1, "GOOD-CARD", Ev(soc=0.2, max_power_w=7_400))
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-OFF")
    await sim.disconnect()
    for _ in range(4):
        clock.advance(900)
        sim.advance(900)
        await sim.send_meter_values(1)
    await sim.stop(1)
    assert len(sim.queue) == 5  # four meter values and the stop wait for the link
    sim.go_online()
    await sim.connect()
    await sim.boot()
    await sim.wait_sent()
    ended = await env.wait_for(SessionEnded, lambda e: e.session_id == started.session_id)
    assert ended.energy_wh == pytest.approx(7_400, abs=1)  # 7.4 kW for an hour, all delivered while offline
    await env.drained()
    samples = await env.storage.samples.for_session(started.session_id)
    assert max(s.measured_at for s in samples) == clock.now()


async def test_offline_start_gets_transaction_id_on_reconnect(env: OcppEnv, version: OcppVersion) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-LATE", version, clock=clock)
    await sim.disconnect()
    tx = await sim.start(1, "GOOD-CARD", Ev(soc=0.5))
    clock.advance(600)
    sim.advance(600)
    await sim.send_meter_values(1)
    await sim.stop(1)
    sim.go_online()
    await sim.connect()
    await sim.boot()
    await sim.wait_sent()
    assert tx.id is not None
    ended = await env.wait_for(SessionEnded, lambda e: e.station_id == "CP-LATE")
    assert ended.energy_wh > 0
    session = await env.storage.sessions.get(ended.session_id)
    assert session is not None and session.started_at == T0 and session.transaction_id == tx.id


async def test_duplicate_stop_same_answer_no_change(env: OcppEnv) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-DUP", OcppVersion.V16, clock=clock)
    tx = await sim.start(1, "GOOD-CARD")
    await sim.wait_sent()
    stop = c16.StopTransaction(
        meter_stop=1_002_000,
        timestamp=t.format_time(T0.replace(hour=9)),
        transaction_id=int(tx.id or 0),
        id_tag="GOOD-CARD",
    )
    first = await sim._call(stop)
    ended = await env.wait_for(SessionEnded, lambda e: e.station_id == "CP-DUP")
    await env.drained()
    before = await env.storage.sessions.get(ended.session_id)
    again = c16.StopTransaction(
        meter_stop=1_009_999,
        timestamp=t.format_time(T0.replace(hour=10)),
        transaction_id=int(tx.id or 0),
        id_tag="GOOD-CARD",
    )
    second = await sim._call(again)
    assert first == second
    await env.drained()
    assert await env.storage.sessions.get(ended.session_id) == before
    assert before is not None and before.energy_wh == 2_000


async def test_duplicate_ended_event_changes_nothing(env: OcppEnv) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-DUP2", OcppVersion.V201, clock=clock)
    await sim.start(1, "GOOD-CARD")
    clock.advance(60)
    sim.advance(60)
    await sim.stop(1)
    await sim.wait_sent()
    ended = await env.wait_for(SessionEnded, lambda e: e.station_id == "CP-DUP2")
    await env.drained()
    before = await env.storage.sessions.get(ended.session_id)
    assert before is not None
    duplicate = m201.transaction_event(
        TransactionEventEnumType.ended,
        at=clock.now(),
        trigger="StopAuthorized",
        seq_no=99,
        transaction_id=before.transaction_id,
        evse_id=1,
        stopped_reason="Local",
    )
    answer = await sim._call(duplicate)
    assert answer is not None
    await env.drained()
    assert await env.storage.sessions.get(ended.session_id) == before


async def test_station_cannot_stop_another_stations_transaction(env: OcppEnv) -> None:
    clock = FakeClock(T0)
    owner = await env.station("CP-OWNER", OcppVersion.V16, clock=clock)
    thief = await env.station("CP-THIEF", OcppVersion.V16, clock=clock)
    for sim in (owner, thief):
        await sim.connect()
        await sim.boot()
    tx = await owner.start(1, "GOOD-CARD")
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-OWNER")
    answer = await thief._call(
        c16.StopTransaction(meter_stop=5, timestamp=t.format_time(T0), transaction_id=int(tx.id or 0))
    )
    assert answer is not None  # answered, as the spec demands
    await env.drained()
    session = await env.storage.sessions.get(started.session_id)
    assert session is not None and session.status is SessionStatus.ACTIVE


async def test_meter_values_without_transaction_id_go_to_open_session(env: OcppEnv) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-NOTX", OcppVersion.V16, clock=clock)
    await sim.start(2, "GOOD-CARD")
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-NOTX")
    clock.advance(300)
    sim.advance(300)
    await sim.send_meter_values(2, with_transaction_id=False)
    await env.drained()
    samples = await env.storage.samples.for_session(started.session_id)
    assert samples and all(s.evse_id == 2 for s in samples)
