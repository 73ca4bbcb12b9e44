"""Property tests: arbitrary sequences of schema-valid OCPP messages through the edge and the session rules.

Messages are generated from the official OCPP JSON schemas the ``ocpp`` package ships
(``ocpp/v16/schemas``, ``ocpp/v201/schemas``) with hypothesis-jsonschema, for both versions;
transaction ids, EVSE numbers and id tokens are then drawn from small pools (and the result
validated against the schema again) so that messages of one sequence meet the same sessions.
Each sequence goes through ``interpret`` (edge checks + translation) and ``SessionBook.apply``
exactly as the applier feeds them, then every session is priced.

Invariants: no exception escapes; a session's energy never goes backwards and is finite; every
sample value is finite; every session ends open (no stop) or completed with a reason and a stop
not before its start; at most one open session per EVSE; the price is finite (never NaN/inf).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from ems.billing.pricing import price_session, usage_from_session
from ems.domain.session import ChargingSession, MeterSample, SessionStatus
from ems.domain.session_rules import SessionBook
from ems.domain.station import OcppVersion
from ems.domain.tariff import Tariff, TouBand
from ems.ocpp.translate import ChargingNeeds, TxUpdate
from ems.ocpp.translate.inbound import Rejected, interpret
from tests.examples import examples

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
STATIONS = ("CP-A", "CP-B")
TARIFF = Tariff(
    "t",
    "Standard",
    "EUR",
    energy_per_kwh=Decimal("0.30"),
    time_per_minute=Decimal("0.01"),
    session_fee=Decimal("1.00"),
    tou=(TouBand("peak", time(17), time(21), energy_per_kwh=Decimal("0.45")),),
    vat_percent=Decimal("21"),
)

ACTIONS = {
    OcppVersion.V16: ("StartTransaction", "StopTransaction", "MeterValues", "StatusNotification"),
    # TransactionEvent carries all of 2.0.1's transaction life: weighted up so sequences start and end sessions.
    OcppVersion.V201: ("TransactionEvent",) * 4 + ("MeterValues", "StatusNotification", "NotifyEVChargingNeeds"),
}


@cache
def _schema(version: OcppVersion, action: str) -> dict[str, Any]:
    folder = "v16" if version is OcppVersion.V16 else "v201"
    name = f"{action}.json" if version is OcppVersion.V16 else f"{action}Request.json"
    schema: dict[str, Any] = json.loads(
        resources.files("ocpp").joinpath(folder, "schemas", name).read_text(encoding="utf-8-sig")
    )
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


PRUNED = frozenset({"customData", "signedMeterValue", "additionalInfo", "groupIdToken"})
"""Optional vendor, signature and token-detail objects ems never reads are left out of generation, and
arrays are capped at 4 items: generating them made hypothesis-jsonschema ~20x slower on the 2.0.1
schemas. A payload without an optional property, or with fewer items, is valid against the full
official schema (each generated payload is validated against it below)."""
MAX_ITEMS = 4


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: v for k, v in out["properties"].items() if k not in PRUNED}
        if out.get("type") == "array":
            out["maxItems"] = min(out.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        return out
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


@cache
def _validator(version: OcppVersion, action: str) -> Any:
    return fastjsonschema.compile(_schema(version, action))


@cache
def _payloads(version: OcppVersion, action: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(_pruned(_schema(version, action)))


def _station_time(offset_s: int) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


_NEAR = st.integers(min_value=-3 * 3600, max_value=6 * 3600).map(_station_time)
NEAR_TIME = st.one_of(
    _NEAR,
    _NEAR,
    _NEAR,
    st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "1970-01-01T00:00:00Z"]),
)
"""A station time around T0 (both sides of the receive times), or one of the issue's extremes."""


@st.composite
def message(draw: st.DrawFn, version: OcppVersion) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(action, payload, our answer): schema-valid, with ids from small pools so messages meet."""
    action = draw(st.sampled_from(ACTIONS[version]))
    p = draw(_payloads(version, action))
    tx = draw(st.integers(min_value=1, max_value=2))
    evse = draw(st.integers(min_value=0, max_value=2))
    tag = draw(st.sampled_from(["CARD-1", "CARD-2"]))
    if "timestamp" in p:
        p["timestamp"] = draw(NEAR_TIME)
    for mv in p.get("meterValue", p.get("transactionData", [])):
        mv["timestamp"] = draw(NEAR_TIME)
    answer: dict[str, Any] = {}
    status = draw(st.sampled_from(["Accepted", "Accepted", "Invalid"]))
    if version is OcppVersion.V16:
        if "connectorId" in p:
            p["connectorId"] = evse
        if "transactionId" in p or action == "StopTransaction":
            p["transactionId"] = tx
        if action == "StartTransaction":
            p["idTag"] = tag
            answer = {"transactionId": tx, "idTagInfo": {"status": status}}
    else:
        if action in ("MeterValues", "StatusNotification", "NotifyEVChargingNeeds"):
            p["evseId"] = evse
        if action == "TransactionEvent":
            p["transactionInfo"]["transactionId"] = f"tx-{tx}"
            if draw(st.booleans()):
                p["evse"] = {"id": evse, "connectorId": 1}
            if "idToken" in p:
                p["idToken"]["idToken"] = tag
                answer = {"idTokenInfo": {"status": status}}
    try:
        _validator(version, action)(p)
    except fastjsonschema.JsonSchemaValueException:
        assume(False)
    return action, p, answer


@st.composite
def sequence(draw: st.DrawFn, version: OcppVersion) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Messages in an order that mostly follows a transaction's life (2.0.1: Started first), with strays."""
    messages = draw(st.lists(message(version), min_size=4, max_size=12))
    seen: set[str] = set()
    for action, payload, _ in messages:
        if action == "TransactionEvent":
            tx = payload["transactionInfo"]["transactionId"]
            if tx not in seen and draw(st.integers(0, 9)) < 8:
                payload["eventType"] = "Started"
            elif tx in seen:
                payload["eventType"] = draw(st.sampled_from(["Ended", "Updated", "Updated", "Started"]))
            seen.add(tx)
    return messages


def _run(version: OcppVersion, messages: list[tuple[str, dict[str, Any], dict[str, Any]]], gaps: list[int]) -> None:
    book = SessionBook()
    energy: dict[str, float] = {}
    samples: dict[str, list[MeterSample]] = {}
    received = T0
    for i, (action, payload, answer) in enumerate(messages):
        received += timedelta(seconds=gaps[i % len(gaps)])
        station = STATIONS[0] if i % 4 else STATIONS[1]  # mostly one station, so messages meet its sessions
        meaning = interpret(version, action, payload, answer, station_id=station, received_at=received)
        if isinstance(meaning, TxUpdate):
            out = book.apply(meaning, new_session_id=f"s{i}")
        elif isinstance(meaning, ChargingNeeds):
            out = book.charging_needs(station, meaning, at=received)
        else:
            assert not isinstance(meaning, Rejected) or meaning.reason
            continue
        for s in out.samples:
            assert s.value == s.value and abs(s.value) < float("inf"), s
            if s.session_id is not None:
                samples.setdefault(s.session_id, []).append(s)
        for session in (*out.new, *out.changed):
            assert 0.0 <= session.energy_wh < float("inf")
            assert session.energy_wh >= energy.get(session.id, 0.0), "energy went backwards"
            energy[session.id] = session.energy_wh
    open_on: set[tuple[str, int]] = set()
    for session in book.sessions():
        _check_closed_or_open(session)
        if session.status is SessionStatus.ACTIVE:
            assert (session.station_id, session.evse_id) not in open_on, "two open sessions on one EVSE"
            open_on.add((session.station_id, session.evse_id))
        stop = (
            session.stopped_at
            if session.stopped_at
            else max(session.updated_at or session.started_at, session.started_at)
        )
        usage = usage_from_session(
            session, samples.get(session.id, []), stopped_at=None if session.stopped_at else stop
        )
        cdr = price_session(TARIFF, usage, "Europe/Amsterdam")
        assert cdr.total.amount.is_finite() and cdr.total.amount >= 0


def _check_closed_or_open(session: ChargingSession) -> None:
    if session.status is SessionStatus.COMPLETED:
        assert session.stop_reason, "a completed session without a reason"
        assert session.stopped_at is not None and session.stopped_at >= session.started_at
    else:
        assert session.stopped_at is None and session.stop_reason is None


PROPERTY = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
GAPS = st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=5)


@pytest.mark.slow
@PROPERTY
@given(sequence(OcppVersion.V16), GAPS)
def test_v16_sequences_keep_the_session_invariants(
    messages: list[tuple[str, dict[str, Any], dict[str, Any]]], gaps: list[int]
) -> None:
    _run(OcppVersion.V16, messages, gaps)


@pytest.mark.slow
@PROPERTY
@given(sequence(OcppVersion.V201), GAPS)
def test_v201_sequences_keep_the_session_invariants(
    messages: list[tuple[str, dict[str, Any], dict[str, Any]]], gaps: list[int]
) -> None:
    _run(OcppVersion.V201, messages, gaps)
