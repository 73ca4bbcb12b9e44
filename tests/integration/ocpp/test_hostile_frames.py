"""Regression tests for issue 10's OCPP cases, sent by a RAW WebSocket client against the real server.

Hand-made frames on purpose: these are schema-valid (or deliberately malformed) frames no OCPP
library would build. Each test checks that the station got a valid answer AND that storage still
works for another station afterwards (before issue 10, one of these frames stopped the applier
for good, or killed the process). Both storage back ends (the ``env`` fixture).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ems.billing.pricing import price_session, usage_from_session
from ems.domain.quarantine import QuarantineSource
from ems.domain.register import FLAG_CLOCK_AHEAD, FLAG_OUT_OF_RANGE
from ems.domain.session import SessionStatus
from ems.domain.station import Station
from ems.domain.tariff import Tariff
from tests.integration.ocpp.conftest import OcppEnv

_ids = itertools.count()
TARIFF = Tariff("t", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), time_per_minute=Decimal("0.01"))


class Raw:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        unique_id = f"m{next(_ids)}"
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        answer: list[Any] = json.loads(await self.ws.recv())
        assert answer[1] == unique_id
        return answer

    async def result(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = await self.call(action, payload)
        assert answer[0] == 3, answer  # a CALLRESULT: the station got its valid answer
        result: dict[str, Any] = answer[2]
        return result


@asynccontextmanager
async def raw(env: OcppEnv, station_id: str, version: str) -> AsyncIterator[Raw]:
    await env.storage.stations.add(Station(id=station_id))
    async with websockets.connect(f"{env.url}/{station_id}", subprotocols=[websockets.Subprotocol(version)]) as ws:
        yield Raw(ws)


def _now(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat().replace("+00:00", "Z")


async def storage_still_works(env: OcppEnv, station_id: str) -> None:
    """Another station's whole transaction is stored after the hostile frame."""
    async with raw(env, station_id, "ocpp1.6") as cp:
        start = await cp.result(
            "StartTransaction", {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 100, "timestamp": _now()}
        )
        tx = start["transactionId"]
        sampled = [{"timestamp": _now(), "sampledValue": [{"value": "600", "unit": "Wh"}]}]
        await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": sampled})
        await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 1100, "timestamp": _now()})
    await env.drained()
    [session] = await env.storage.sessions.query(station_id=station_id)
    assert session.status is SessionStatus.COMPLETED and session.energy_wh == 1000.0
    assert len(await env.storage.samples.for_session(session.id)) == 1
    assert env.runtime.applier.stats.records >= 3


async def test_a_9999_status_timestamp(env: OcppEnv) -> None:
    async with raw(env, "CP-9999", "ocpp1.6") as cp:
        payload = {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Available",
            "timestamp": "9999-12-31T23:59:59-05:00",
        }
        assert await cp.result("StatusNotification", payload) == {}
    await env.drained()
    [status] = await env.storage.stations.status_history("CP-9999")
    assert abs(status.at - datetime.now(UTC)) < timedelta(minutes=5)  # the receive time
    assert env.runtime.applier.stats.time_corrected >= 1
    await storage_still_works(env, "CP-AFTER-9999")


async def test_a_0001_start_timestamp(env: OcppEnv) -> None:
    async with raw(env, "CP-0001", "ocpp1.6") as cp:
        start = {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 0, "timestamp": "0001-01-01T00:00:00+01:00"}
        answer = await cp.result("StartTransaction", start)
        assert answer["idTagInfo"]["status"] == "Accepted"
    await env.drained()
    [session] = await env.storage.sessions.query(station_id="CP-0001")
    assert session.started_at.year == datetime.now(UTC).year
    await storage_still_works(env, "CP-AFTER-0001")


async def test_a_multiplier_of_400(env: OcppEnv) -> None:
    async with raw(env, "CP-MUL", "ocpp2.0.1") as cp:
        value = {
            "value": 1,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh", "multiplier": 400},
        }
        assert (
            await cp.result(
                "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": _now(), "sampledValue": [value]}]}
            )
            == {}
        )
    await env.drained()
    [sample] = await env.storage.samples.for_station("CP-MUL")
    assert (sample.value, sample.flag, sample.raw_unit) == (0.0, FLAG_OUT_OF_RANGE, "Whe400")
    await storage_still_works(env, "CP-AFTER-MUL")


async def test_1e306_kwh_on_a_running_session(env: OcppEnv) -> None:
    async with raw(env, "CP-HUGE", "ocpp1.6") as cp:
        start = await cp.result(
            "StartTransaction", {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 1000, "timestamp": _now()}
        )
        tx = start["transactionId"]
        huge = [{"timestamp": _now(), "sampledValue": [{"value": "1e306", "unit": "kWh"}]}]
        assert await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": huge}) == {}
        await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 1500, "timestamp": _now()})
    await env.drained()
    [session] = await env.storage.sessions.query(station_id="CP-HUGE")
    assert session.status is SessionStatus.COMPLETED and session.energy_wh == 500.0
    samples = await env.storage.samples.for_session(session.id)
    assert [(s.value, s.flag) for s in samples] == [(0.0, FLAG_OUT_OF_RANGE)]
    cdr = price_session(TARIFF, usage_from_session(session, samples), "Europe/Amsterdam")
    assert cdr.total.amount.is_finite() and cdr.energy_wh == Decimal(500)
    await storage_still_works(env, "CP-AFTER-HUGE")


async def test_a_station_clock_hours_and_years_ahead(env: OcppEnv) -> None:
    """ems simulate at 60x against ems serve: the stop arrived 'before' the start, and pricing killed the process."""
    async with raw(env, "CP-AHEAD", "ocpp2.0.1") as cp:
        base = {"triggerReason": "Authorized", "idToken": {"idToken": "GOOD-CARD", "type": "ISO14443"}}
        started = {
            **base,
            "eventType": "Started",
            "timestamp": _now(timedelta(minutes=4)),
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-ahead"},
            "evse": {"id": 1, "connectorId": 1},
        }
        answer = await cp.result("TransactionEvent", started)
        assert answer["idTokenInfo"]["status"] == "Accepted"
        sampled = [{"timestamp": _now(timedelta(days=800)), "sampledValue": [{"value": 5000}]}]
        updated = {
            **base,
            "eventType": "Updated",
            "timestamp": _now(timedelta(hours=3)),
            "seqNo": 1,
            "transactionInfo": {"transactionId": "tx-ahead"},
            "meterValue": sampled,
        }
        await cp.result("TransactionEvent", updated)
        ended = {
            **base,
            "eventType": "Ended",
            "timestamp": _now(timedelta(days=3 * 365)),
            "seqNo": 2,
            "transactionInfo": {"transactionId": "tx-ahead", "stoppedReason": "EVDisconnected"},
        }
        await cp.result("TransactionEvent", ended)
    await env.drained()
    [session] = await env.storage.sessions.query(station_id="CP-AHEAD")
    assert session.status is SessionStatus.COMPLETED and session.stopped_at is not None
    assert session.stopped_at >= session.started_at  # the start was 4 min ahead (kept), the stop corrected
    assert session.stopped_at - datetime.now(UTC) < timedelta(minutes=5)
    samples = await env.storage.samples.for_session(session.id)
    assert [s.flag for s in samples] == [FLAG_CLOCK_AHEAD]
    cdr = price_session(TARIFF, usage_from_session(session, samples), "Europe/Amsterdam")  # never raises
    assert cdr.total.amount.is_finite()
    await storage_still_works(env, "CP-AFTER-AHEAD")


async def test_200_kb_of_nested_json(env: OcppEnv) -> None:
    async with raw(env, "CP-DEEP", "ocpp1.6") as cp:
        depth = 100_000
        await cp.ws.send('[2,"deep-1","Heartbeat",' + "[" * depth + "]" * depth + "]")
        answer = json.loads(await cp.ws.recv())
        assert answer[:3] == [4, "deep-1", "FormatViolation"]
        assert "currentTime" in await cp.result("Heartbeat", {})  # the connection stays usable
    await storage_still_works(env, "CP-AFTER-DEEP")


async def test_201_updated_for_an_unknown_transaction_creates_no_session(env: OcppEnv) -> None:
    async with raw(env, "CP-GHOST", "ocpp2.0.1") as cp:
        sampled = [{"timestamp": _now(), "sampledValue": [{"value": 1234}]}]
        ghost = {
            "eventType": "Updated",
            "timestamp": _now(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 7,
            "transactionInfo": {"transactionId": "never-started"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": sampled,
        }
        assert await cp.result("TransactionEvent", ghost) == {}
        bad_token = {**ghost, "seqNo": 8, "idToken": {"idToken": "NO-SUCH-CARD", "type": "ISO14443"}}
        assert (await cp.result("TransactionEvent", bad_token))["idTokenInfo"]["status"] == "Invalid"
    await env.drained()
    assert await env.storage.sessions.query(station_id="CP-GHOST") == []
    samples = await env.storage.samples.for_station("CP-GHOST")
    assert len(samples) == 1 and samples[0].session_id is None  # kept for audit, once (the resend adds nothing)
    notes = env.runtime.applier.stats.notes
    assert notes.get("unknown_transaction", 0) >= 1 and notes.get("implicit_start_refused", 0) >= 1
    await storage_still_works(env, "CP-AFTER-GHOST")


async def test_resent_meter_values_are_stored_once_and_poison_is_quarantined(env: OcppEnv) -> None:
    async with raw(env, "CP-DUP", "ocpp1.6") as cp:
        start = await cp.result(
            "StartTransaction", {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 0, "timestamp": _now()}
        )
        meter = {
            "connectorId": 1,
            "transactionId": start["transactionId"],
            "meterValue": [{"timestamp": _now(), "sampledValue": [{"value": "250"}]}],
        }
        for _ in range(3):  # a station that lost our answers resends
            assert await cp.result("MeterValues", meter) == {}
        poison = {"connectorId": 10**15, "errorCode": "NoError", "status": "Available"}
        assert await cp.result("StatusNotification", poison) == {}  # schema-valid: answered
    await env.drained()
    [session] = await env.storage.sessions.query(station_id="CP-DUP")
    assert len(await env.storage.samples.for_session(session.id)) == 1 and session.energy_wh == 250.0
    [entry] = await env.storage.quarantine.list(source=QuarantineSource.OCPP)
    assert entry.station_id == "CP-DUP" and "connectorId" in entry.reason
    assert env.runtime.applier.stats.quarantined == 1
    await storage_still_works(env, "CP-AFTER-DUP")


async def test_lone_surrogates_and_nul_in_an_id_token(env: OcppEnv) -> None:
    """JSON "\\ud800" escapes decode to strings neither UTF-8 nor PostgreSQL can hold."""
    async with raw(env, "CP-SURR", "ocpp2.0.1") as cp:
        token = {"idToken": "\ud800CARD\x00", "type": "ISO14443"}
        started = {
            "eventType": "Started",
            "timestamp": _now(),
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-s"},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": token,
        }
        answer = await cp.result("TransactionEvent", started)
        assert answer["idTokenInfo"]["status"] == "Invalid"  # no such card, not "no answer -> Accepted"
        assert (await cp.result("Authorize", {"idToken": token}))["idTokenInfo"]["status"] == "Invalid"
    await env.drained()
    [session] = await env.storage.sessions.query(station_id="CP-SURR")
    assert session.id_tag == "\ufffdCARD\ufffd"
    await storage_still_works(env, "CP-AFTER-SURR")
