"""Capacity-signal payloads: JSON in (validated, every problem reported at once) and JSON out.

Pure: no I/O, no clock. The wire format follows OSCP 2.0 ``UpdateGroupCapacityForecast``
(see docs/grid.md and docs/schemas/capacity-signal.schema.json)::

    {
      "message_id": "f-2026-01-05T08:00",          # ours: echoed on the ack topic; optional
      "type": "CONSUMPTION",                        # OSCP; optional, only CONSUMPTION is taken
      "forecasted_blocks": [
        {"capacity": 40, "unit": "KW", "phase": "ALL",
         "start_time": "2026-01-05T08:00:00Z", "end_time": "2026-01-05T09:00:00Z"},
        {"capacity": 63, "unit": "A", "phase": "ONE",
         "start_time": "2026-01-05T09:00:00Z", "end_time": "2026-01-05T12:00:00Z"}
      ]
    }

``unit`` is ``W`` or ``KW`` (a bound on total power, ``phase`` absent or ``ALL``) or ``A``
(a bound on current, for one phase ``ONE``/``TWO``/``THREE`` (also ``L1``..``L3``) or every
phase ``ALL``). For an immediate limit ``start_time`` defaults to the arrival time and
``end_time`` may be left out (in force until replaced). An empty ``forecasted_blocks``
clears the forecast (or limit) of its target.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ems.domain.capacity import (
    OPEN_END,
    CapacityBlock,
    CapacityInterval,
    CapacitySignal,
    CapacityUnit,
    SignalKind,
    SignalSource,
    SiteLoadReading,
)
from ems.domain.site import Site
from ems.domain.units import Phase

MAX_PAYLOAD_BYTES = 65_536
"""A day of one-minute blocks is ~200 KiB of JSON; 64 KiB (~500 blocks) is ample for 15-min OSCP blocks."""
MAX_BLOCKS = 500
MAX_MESSAGE_ID_LENGTH = 128
MAX_CAPACITY = 1e12
"""1 TW (or 1 TA): anything above is a mistake, and a huge JSON integer would not even convert to float."""

EXAMPLE_FORECAST: dict[str, Any] = {
    "message_id": "dso-2026-01-05T08:00Z-1",
    "type": "CONSUMPTION",
    "forecasted_blocks": [
        {
            "capacity": 40,
            "unit": "KW",
            "phase": "ALL",
            "start_time": "2026-01-05T08:00:00Z",
            "end_time": "2026-01-05T09:00:00Z",
        },
        {
            "capacity": 63,
            "unit": "A",
            "phase": "ONE",
            "start_time": "2026-01-05T09:00:00Z",
            "end_time": "2026-01-05T12:00:00Z",
        },
    ],
}
"""The example of docs/grid.md and docs/schemas/capacity-signal.schema.json (a test keeps them equal)."""

_TOP_KEYS = {"message_id", "group_id", "type", "kind", "circuit_id", "forecasted_blocks"}
_BLOCK_KEYS = {"capacity", "phase", "unit", "start_time", "end_time"}
_PHASES: dict[str, Phase | None] = {
    "ALL": None,
    "ONE": Phase.L1,
    "TWO": Phase.L2,
    "THREE": Phase.L3,
    "L1": Phase.L1,
    "L2": Phase.L2,
    "L3": Phase.L3,
}
_PHASE_NAMES = {Phase.L1: "ONE", Phase.L2: "TWO", Phase.L3: "THREE"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A signal that was not applied, and every reason why."""

    site_id: str
    kind: SignalKind
    problems: tuple[str, ...]
    received_at: datetime
    circuit_id: str | None = None
    message_id: str | None = None
    source: SignalSource = SignalSource.API

    def as_signal(self) -> CapacitySignal:
        """The audit record of the rejected signal (no blocks)."""
        return CapacitySignal(
            site_id=self.site_id,
            kind=self.kind,
            blocks=(),
            received_at=self.received_at,
            circuit_id=self.circuit_id,
            message_id=self.message_id,
            source=self.source,
        )


def parse_signal(
    raw: bytes | str | Mapping[str, Any],
    *,
    site_id: str,
    site: Site | None,
    received_at: datetime,
    source: SignalSource,
    kind: SignalKind | None = None,
    circuit_id: str | None = None,
) -> CapacitySignal | Rejection:
    """Validate ``raw`` for ``site`` (``None``: an unknown site); a signal, or every problem found.

    ``kind`` and ``circuit_id`` come from the route (MQTT topic, URL); the body may repeat
    them (``"kind"``, ``"circuit_id"``) but must agree. Without either, ``kind`` is a forecast.
    """
    problems: list[str] = []
    body = _decode(raw, problems)
    message_id = _message_id(body, problems)
    kind = _resolve_kind(kind, body, problems)
    circuit_id = _resolve_circuit(circuit_id, body, problems)
    if site is None:
        problems.append(f"unknown site {_short(site_id)}")
    elif circuit_id is not None and all(c.id != circuit_id for c in site.circuits):
        problems.append(f"unknown circuit {_short(circuit_id)} of site {_short(site_id)}")
    blocks: list[CapacityBlock] = []
    if body is not None:
        extra = sorted(set(body) - _TOP_KEYS)
        if extra:
            problems.append(f"unknown fields {extra} (expected {sorted(_TOP_KEYS)})")
        kind_of_load = body.get("type", "CONSUMPTION")
        if kind_of_load != "CONSUMPTION":
            problems.append(f"type {_short(kind_of_load)} is not taken: only CONSUMPTION capacity is")
        raw_blocks = body.get("forecasted_blocks")
        if not isinstance(raw_blocks, list):
            problems.append("forecasted_blocks is required and must be a list")
        elif len(raw_blocks) > MAX_BLOCKS:
            problems.append(f"forecasted_blocks has {len(raw_blocks)} blocks, more than {MAX_BLOCKS}")
        else:
            for i, item in enumerate(raw_blocks):
                block = _block(item, f"forecasted_blocks[{i}]", kind, received_at, problems)
                if block is not None:
                    blocks.append(block)
    if problems:
        return Rejection(site_id, kind, tuple(problems), received_at, circuit_id, message_id, source)
    return CapacitySignal(
        site_id=site_id,
        kind=kind,
        blocks=tuple(sorted(blocks, key=lambda b: (b.start, b.end))),
        received_at=received_at,
        circuit_id=circuit_id,
        message_id=message_id,
        source=source,
    )


def _decode(raw: bytes | str | Mapping[str, Any], problems: list[str]) -> Mapping[str, Any] | None:
    if isinstance(raw, Mapping):
        return raw
    if len(raw) > MAX_PAYLOAD_BYTES:
        problems.append(f"payload of {len(raw)} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, bad UTF-8 and integers over Python's 4,300-digit limit;
        # RecursionError a payload nested thousands deep.
        problems.append(f"malformed JSON: {_short(exc)}")
        return None
    if not isinstance(body, dict):
        problems.append(f"the payload must be a JSON object, got {type(body).__name__}")
        return None
    return body


def _short(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters: problems are echoed to the sender and the log."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message_id(body: Mapping[str, Any] | None, problems: list[str]) -> str | None:
    value = None if body is None else body.get("message_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_MESSAGE_ID_LENGTH:
        problems.append(f"message_id must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters")
        return None
    return value


def _resolve_kind(route: SignalKind | None, body: Mapping[str, Any] | None, problems: list[str]) -> SignalKind:
    value = None if body is None else body.get("kind")
    if value is None:
        return route or SignalKind.FORECAST
    try:
        stated = SignalKind(value)
    except ValueError:
        problems.append(f"kind must be one of {[k.value for k in SignalKind]}, got {_short(value)}")
        return route or SignalKind.FORECAST
    if route is not None and stated is not route:
        problems.append(f"kind {stated.value!r} in the body disagrees with {route.value!r} in the topic/URL")
        return route
    return stated


def _resolve_circuit(route: str | None, body: Mapping[str, Any] | None, problems: list[str]) -> str | None:
    value = None if body is None else body.get("circuit_id")
    if value is None:
        return route
    if not isinstance(value, str) or not value:
        problems.append("circuit_id must be a non-empty string")
        return route
    if route is not None and value != route:
        problems.append(f"circuit_id {_short(value)} in the body disagrees with {_short(route)} in the topic/URL")
        return route
    return value


def _block(item: Any, where: str, kind: SignalKind, received_at: datetime, problems: list[str]) -> CapacityBlock | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: must be an object")
        return None
    before = len(problems)
    extra = sorted(set(item) - _BLOCK_KEYS)
    if extra:
        problems.append(f"{where}: unknown fields {extra}")
    capacity = item.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int | float):
        problems.append(f"{where}: capacity must be a number, got {_short(capacity)}")
    elif capacity < 0:
        problems.append(f"{where}: capacity must not be negative, got {_short(capacity)}")
    elif capacity > MAX_CAPACITY or not math.isfinite(capacity):
        problems.append(f"{where}: capacity {_short(capacity)} is above {MAX_CAPACITY:g}")
    unit = _unit(item.get("unit"), where, problems)
    phase_name = item.get("phase", "ALL")
    phase: Phase | None = None
    if not isinstance(phase_name, str) or phase_name.upper() not in _PHASES:
        problems.append(f"{where}: phase must be one of ALL, ONE, TWO, THREE, got {_short(phase_name)}")
    else:
        phase = _PHASES[phase_name.upper()]
        if phase is not None and unit in (CapacityUnit.W, CapacityUnit.KW):
            problems.append(f"{where}: a power capacity (W, KW) covers all phases; use phase ALL or unit A")
    is_limit = kind is SignalKind.LIMIT
    start = _time(item, "start_time", where, problems, default=received_at if is_limit else None)
    end = _time(item, "end_time", where, problems, default=OPEN_END if is_limit else None)
    if start is not None and end is not None and end <= start:
        problems.append(f"{where}: end_time {_iso(end)} is not after start_time {_iso(start)}")
    if len(problems) > before or start is None or end is None or unit is None or capacity is None:
        return None
    return CapacityBlock(start=start, end=end, capacity=float(capacity), unit=unit, phase=phase)


def _unit(value: Any, where: str, problems: list[str]) -> CapacityUnit | None:
    if not isinstance(value, str):
        problems.append(f"{where}: unit is required (W, KW or A), got {_short(value)}")
        return None
    try:
        return CapacityUnit(value.upper())
    except ValueError:
        problems.append(f"{where}: unknown unit {_short(value)} (use W, KW or A)")
        return None


def _time(
    item: Mapping[str, Any], key: str, where: str, problems: list[str], *, default: datetime | None
) -> datetime | None:
    value = item.get(key)
    if value is None:
        if default is None:
            problems.append(f"{where}: {key} is required")
        return default
    if not isinstance(value, str):
        problems.append(f"{where}: {key} must be an ISO 8601 string, got {_short(value)}")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: {key} {_short(value)} is not an ISO 8601 date-time")
        return None
    if parsed.tzinfo is None:
        problems.append(f"{where}: {key} {_short(value)} has no UTC offset (add Z or +01:00)")
        return None
    return parsed.astimezone(UTC)


# ---------------------------------------------------------------- JSON out


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_open(when: datetime) -> str | None:
    """ISO 8601 UTC, or ``None`` for an open end."""
    return None if when >= OPEN_END else _iso(when)


def signal_to_payload(signal: CapacitySignal) -> dict[str, Any]:
    """The wire form of ``signal`` (``parse_signal`` of it gives the same blocks back)."""
    blocks = []
    for b in signal.blocks:
        block: dict[str, Any] = {
            "capacity": b.capacity,
            "unit": b.unit.value,
            "phase": "ALL" if b.phase is None else _PHASE_NAMES[b.phase],
            "start_time": _iso(b.start),
        }
        end = iso_or_open(b.end)
        if end is not None:
            block["end_time"] = end
        blocks.append(block)
    out: dict[str, Any] = {"type": "CONSUMPTION", "forecasted_blocks": blocks}
    if signal.message_id is not None:
        out["message_id"] = signal.message_id
    return out


def interval_to_json(interval: CapacityInterval) -> dict[str, Any]:
    return {
        "start": _iso(interval.start),
        "end": iso_or_open(interval.end),
        "capacity_w": interval.capacity_w,
        "capacity_source": interval.capacity_source.value if interval.capacity_source else None,
        "phase_limits_a": {p.value: a for p, a in sorted(interval.phase_limits_a.items())},
        "phase_sources": {p.value: s.value for p, s in sorted(interval.phase_sources.items())},
        "stale": interval.stale,
    }


def ack_payload(signal: CapacitySignal, in_force: CapacityInterval, *, duplicate: bool = False) -> dict[str, Any]:
    """What the ack topic (and the API) answers for an accepted signal: its id and what is now in force."""
    return {
        "accepted": True,
        "duplicate": duplicate,
        "message_id": signal.message_id,
        "site_id": signal.site_id,
        "circuit_id": signal.circuit_id,
        "kind": signal.kind.value,
        "blocks": len(signal.blocks),
        "received_at": _iso(signal.received_at),
        "in_force": interval_to_json(in_force),
    }


def error_payload(rejection: Rejection) -> dict[str, Any]:
    """What the errors topic (and the API, as problem details) says about a rejected signal."""
    return {
        "accepted": False,
        "message_id": rejection.message_id,
        "site_id": rejection.site_id,
        "circuit_id": rejection.circuit_id,
        "kind": rejection.kind.value,
        "received_at": _iso(rejection.received_at),
        "problems": list(rejection.problems),
    }


def status_payload(site_id: str, now: datetime, in_force: CapacityInterval, load: SiteLoadReading) -> dict[str, Any]:
    """The retained site status: measured load, the limit in force, headroom (limit minus load), stale flag.

    Headroom is ``None`` where either side is unknown; it is negative when the site is over its limit.
    """
    power_w = load.power_w
    headroom_w = None if power_w is None or in_force.capacity_w is None else in_force.capacity_w - power_w
    headroom_a = {
        p.value: in_force.phase_limits_a[p] - amps
        for p, amps in sorted(load.phase_current_a.items())
        if p in in_force.phase_limits_a
    }
    return {
        "site_id": site_id,
        "at": _iso(now),
        "stale": in_force.stale,
        "measured": {
            "power_w": power_w,
            "phase_power_w": {p.value: w for p, w in sorted(load.phase_power_w.items())},
            "phase_current_a": {p.value: a for p, a in sorted(load.phase_current_a.items())},
            "measured_at": None if load.measured_at is None else _iso(load.measured_at),
        },
        "limit": interval_to_json(in_force),
        "headroom_w": headroom_w,
        "headroom_a": headroom_a,
        "active_sessions": load.active_sessions,
    }
