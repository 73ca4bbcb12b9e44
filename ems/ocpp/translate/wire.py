"""Wire basics shared by both OCPP versions: timestamps and the JSON payload type.

Pure: no I/O, no clock. A payload is the decoded JSON object of a CALL or CALLRESULT,
with the spec's camelCase keys, exactly as on the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Payload = dict[str, Any]
"""A decoded OCPP JSON object (camelCase keys)."""


def parse_time(text: str | None, default: datetime) -> datetime:
    """An OCPP ``dateTime`` as timezone-aware UTC; ``default`` when absent or unreadable.

    Stations send ``Z``, ``+hh:mm`` offsets, and (against the spec) naive times; a
    naive time is read as UTC, since OCPP says all times are UTC. No range or skew check:
    inbound station times go through ``edge.station_time``, which has them.
    """
    if not text:
        return default
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        # astimezone overflows for 0001-01-01T00:00:00+01:00 and 9999-12-31T23:59:59-05:00
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return default


def format_time(when: datetime) -> str:
    """``2026-01-05T08:00:00.000Z``: UTC with milliseconds, the form every charger parses."""
    if when.tzinfo is None:
        raise ValueError("OCPP times must be timezone-aware")
    t = when.astimezone(UTC)
    day = f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    return f"{day}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}Z"
