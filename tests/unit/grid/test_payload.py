"""Parsing and rendering capacity-signal payloads; the JSON schema agrees with the parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.domain.capacity import OPEN_END, CapacitySignal, CapacityUnit, SignalKind, SignalSource
from ems.domain.units import Phase
from ems.grid.payload import EXAMPLE_FORECAST, Rejection, error_payload, parse_signal, signal_to_payload
from tests.examples import examples
from tests.unit.grid.helpers import T0, at, block, signal, site

SCHEMA_PATH = Path(__file__).parents[3] / "docs" / "schemas" / "capacity-signal.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
validate = fastjsonschema.compile(SCHEMA)

GOOD: dict[str, Any] = SCHEMA["examples"][0]


def parse(raw: Any, *, kind: SignalKind | None = None, circuit_id: str | None = None, known: bool = True) -> Any:
    if isinstance(raw, dict):
        raw = json.dumps(raw)
    return parse_signal(
        raw,
        site_id="depot",
        site=site() if known else None,
        received_at=T0,
        source=SignalSource.MQTT,
        kind=kind,
        circuit_id=circuit_id,
    )


def problems(raw: Any, **kw: Any) -> list[str]:
    result = parse(raw, **kw)
    assert isinstance(result, Rejection), result
    return list(result.problems)


def test_the_schema_example_is_the_code_example() -> None:
    assert GOOD == EXAMPLE_FORECAST


def test_the_documented_example_parses() -> None:
    result = parse(GOOD, kind=SignalKind.FORECAST)
    assert isinstance(result, CapacitySignal)
    assert result.message_id == "dso-2026-01-05T08:00Z-1"
    assert result.source is SignalSource.MQTT
    assert [(b.capacity, b.unit, b.phase) for b in result.blocks] == [
        (40, CapacityUnit.KW, None),
        (63, CapacityUnit.A, Phase.L1),
    ]
    assert result.blocks[0].start == T0


def test_limit_defaults_to_now_until_replaced() -> None:
    result = parse({"forecasted_blocks": [{"capacity": 11, "unit": "kW"}]}, kind=SignalKind.LIMIT)
    assert isinstance(result, CapacitySignal)
    assert (result.blocks[0].start, result.blocks[0].end) == (T0, OPEN_END)


def test_malformed_json() -> None:
    assert problems(b"{not json")[0].startswith("malformed JSON")
    assert problems(b"\xff\xfe")[0].startswith("malformed JSON")
    assert problems("[1, 2]") == ["the payload must be a JSON object, got list"]


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "message_id": "bad-1",
        "extra": 1,
        "forecasted_blocks": [
            {"capacity": -5, "unit": "W", "start_time": "2026-01-05T09:00:00Z", "end_time": "2026-01-05T08:00:00Z"},
            {"capacity": 5, "unit": "kWh", "start_time": "2026-01-05T08:00:00", "end_time": "soon"},
            {"capacity": 5, "unit": "W", "phase": "ONE", "start_time": "2026-01-05T08:00:00Z"},
            "nope",
        ],
    }
    found = problems(body, kind=SignalKind.FORECAST, circuit_id="feeder-x")
    expected = [
        "unknown circuit 'feeder-x'",
        "unknown fields ['extra']",
        "[0]: capacity must not be negative",
        "[0]: end_time 2026-01-05T08:00:00Z is not after start_time 2026-01-05T09:00:00Z",
        "[1]: unknown unit 'kWh'",
        "[1]: start_time '2026-01-05T08:00:00' has no UTC offset",
        "[1]: end_time 'soon' is not an ISO 8601 date-time",
        "[2]: a power capacity (W, KW) covers all phases",
        "[2]: end_time is required",
        "[3]: must be an object",
    ]
    for fragment in expected:
        assert any(fragment in p for p in found), (fragment, found)
    assert parse(body, kind=SignalKind.FORECAST).message_id == "bad-1"


def test_unknown_site() -> None:
    assert problems(GOOD, known=False) == ["unknown site 'depot'"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "forecasted_blocks is required"),
        ({"forecasted_blocks": {}}, "forecasted_blocks is required"),
        ({"type": "GENERATION", "forecasted_blocks": []}, "only CONSUMPTION"),
        ({"kind": "limit", "forecasted_blocks": []}, "disagrees"),
        ({"circuit_id": "feeder-a", "forecasted_blocks": []}, "disagrees"),
        ({"message_id": "", "forecasted_blocks": []}, "message_id"),
        ({"forecasted_blocks": [{"capacity": True, "unit": "W"}]}, "capacity must be a number"),
        ({"forecasted_blocks": [{"capacity": 1, "unit": "W", "phase": "FOUR"}]}, "phase must be one of"),
        ({"forecasted_blocks": [{"capacity": 1}]}, "unit is required"),
    ],
)
def test_schema_problems(body: dict[str, Any], fragment: str) -> None:
    found = problems(body, kind=SignalKind.FORECAST, circuit_id="feeder-b" if "circuit_id" in body else None)
    assert any(fragment in p for p in found), found


def test_api_body_may_name_kind_and_circuit() -> None:
    result = parse({"kind": "limit", "circuit_id": "feeder-a", "forecasted_blocks": [{"capacity": 1, "unit": "A"}]})
    assert isinstance(result, CapacitySignal)
    assert (result.kind, result.circuit_id) == (SignalKind.LIMIT, "feeder-a")


def test_oversized_payload() -> None:
    assert "byte limit" in problems(b" " * 70_000)[0]


def test_error_payload_lists_problems() -> None:
    rejected = parse(b"{")
    assert isinstance(rejected, Rejection)
    out = error_payload(rejected)
    assert out["accepted"] is False and out["problems"] and out["site_id"] == "depot"
    assert rejected.as_signal().blocks == ()


# ---------------------------------------------------------------- properties

_units = st.sampled_from([CapacityUnit.W, CapacityUnit.KW, CapacityUnit.A])


@st.composite
def _signals(draw: st.DrawFn) -> CapacitySignal:
    items = []
    for _ in range(draw(st.integers(0, 5))):
        unit = draw(_units)
        phase = draw(st.sampled_from([None, *Phase])) if unit is CapacityUnit.A else None
        start = draw(st.integers(0, 1_000))
        items.append(block(start, start + draw(st.integers(1, 300)), draw(st.floats(0, 1e6)), unit, phase))
    return signal(*sorted(items, key=lambda b: (b.start, b.end)), message_id=draw(st.none() | st.just("m")))


@settings(max_examples=examples(150), deadline=None)
@given(_signals())
def test_render_then_parse_round_trips(original: CapacitySignal) -> None:
    wire = json.dumps(signal_to_payload(original))
    validate(json.loads(wire))
    back = parse_signal(wire, site_id="depot", site=site(), received_at=at(0), source=SignalSource.API)
    assert isinstance(back, CapacitySignal)
    assert back.blocks == original.blocks
    assert back.message_id == original.message_id


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_block_like = st.fixed_dictionaries(
    {},
    optional={
        "capacity": st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.text(max_size=2)),
        "unit": st.sampled_from(["W", "KW", "A", "kWh", "x"]),
        "phase": st.sampled_from(["ALL", "ONE", "L2", "FOUR"]),
        "start_time": st.sampled_from(["2026-01-05T08:00:00Z", "bad"]),
        "end_time": st.sampled_from(["2026-01-05T09:00:00Z", "2026-01-05T07:00:00Z"]),
        "bogus": _json_values,
    },
)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "forecasted_blocks": st.lists(_block_like, max_size=3) | _json_values,
            "message_id": st.text(max_size=3),
            "type": st.sampled_from(["CONSUMPTION", "GENERATION"]),
            "junk": _json_values,
        },
    )
)
def test_parser_and_schema_agree_on_structure(body: dict[str, Any]) -> None:
    """Whatever the schema rejects, the parser rejects too (the parser adds semantic rules on top)."""
    result = parse(body, kind=SignalKind.FORECAST)
    try:
        validate(body)
    except fastjsonschema.JsonSchemaException:
        assert isinstance(result, Rejection)
    else:
        if isinstance(result, Rejection):
            semantic = ("is not after", "covers all phases", "is required", "no UTC offset", "message_id")
            assert all(any(s in p for s in semantic) for p in result.problems), result.problems


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_no_bytes_make_the_parser_raise(raw: bytes) -> None:
    assert isinstance(parse(raw), Rejection | CapacitySignal)


@settings(max_examples=examples(300), deadline=None)
@given(_json_values)
def test_no_json_value_makes_the_parser_raise(value: Any) -> None:
    for body in (value, {"forecasted_blocks": [value]}, {"forecasted_blocks": [{"capacity": value, "unit": "W"}]}):
        assert isinstance(parse(json.dumps(body), kind=SignalKind.LIMIT), Rejection | CapacitySignal)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"forecasted_blocks": [{"capacity": 1' + b"0" * 400 + b', "unit": "W"}]}',
        b"1" * 5000,
        b"[" * 20_000 + b"]" * 20_000,
        b'{"forecasted_blocks": [{"capacity": 1e999, "unit": "W"}]}',
    ],
)
def test_hostile_numbers_and_nesting_are_rejected_not_raised(raw: bytes) -> None:
    result = parse(raw)
    assert isinstance(result, Rejection)
    assert all(len(p) < 200 for p in result.problems)


def test_long_values_are_cut_in_problems() -> None:
    found = problems({"type": "X" * 10_000, "forecasted_blocks": []})
    assert len(found[0]) < 200
