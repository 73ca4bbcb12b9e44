"""The simulated station's own wire basics: OCPP ``dateTime`` in and out.

The simulator plays the other side of the protocol, so it does not borrow the server's
``ems.ocpp.translate``: an end-to-end test then checks the server's reading of what a station
built independently, with the ``ocpp`` library's typed messages (``messages16`` / ``messages201``).
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(when: datetime) -> str:
    """``2026-01-05T08:00:00.000Z``: UTC with milliseconds, as chargers send it."""
    if when.tzinfo is None:
        raise ValueError("OCPP times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_time(text: str | None, default: datetime) -> datetime:
    """An OCPP ``dateTime`` from the CSMS as aware UTC; ``default`` when absent or unreadable."""
    if not text:
        return default
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return default
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
