"""Edge checks: everything a station sends is untrusted, and is checked here, in one place.

Pure: no I/O, no clock (the server's receive time comes in as an argument). The OCPP
schemas (checked before a message is answered) allow far more than ems can use: any year
and UTC offset, integers of any size, numbers up to 1.8e308, any Unicode including lone
surrogates and NUL, unit multipliers of any size. Nothing here raises on such data except
``Unusable`` (a ``ValueError``), which ``inbound.interpret`` turns into a quarantine reason.

Rules (docs/ocpp-input.md has the table):

- **Text**: lone UTF-16 surrogates and NUL become U+FFFD (neither UTF-8 nor PostgreSQL
  TEXT can hold them), in every string of the payload (``clean_payload``).
- **Time** (``station_time``): unreadable or out of Python's range (``9999-12-31T23:59:59-05:00``,
  ``0001-01-01T00:00:00+01:00``) -> the receive time, flagged ``time_unreadable``. More than
  ``MAX_AHEAD_S`` after the receive time (a station clock running ahead) -> the receive time,
  flagged ``clock_ahead``. Before ``EARLIEST`` (2010: a clock reset to 1970 or 2000, or year 1)
  -> the receive time, flagged ``clock_behind``. Anything between keeps its own time: a late
  message from an offline queue cannot be told from a clock running behind, and both are
  ordered by the session rules (a stop never before its start).
- **Numbers** (``scaled_value``): a multiplier outside +-``MAX_MULTIPLIER``, a value not finite
  after unit scaling and multiplier, or outside the physical bounds of its measurand
  (``BOUNDS``) -> value 0 flagged ``out_of_range`` (raw value and unit kept for audit).
- **Energy registers** at start/stop (``register_or_none``): outside ``BOUNDS`` for the register -> unknown.
- **Identifiers** (``evse_number``): EVSE and connector numbers 0..``MAX_EVSE_ID``; beyond,
  the message cannot be applied (``Unusable``) and is quarantined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ems.domain.register import FLAG_CLOCK_AHEAD, FLAG_CLOCK_BEHIND, FLAG_TIME_UNREADABLE
from ems.domain.session import Measurand

MAX_AHEAD_S = 300.0
"""A station time up to 5 min after our receive time is clock drift we accept as is (NTP-less
chargers drift by minutes); beyond, the station's clock is wrong and its time is replaced."""
EARLIEST = datetime(2010, 1, 1, tzinfo=UTC)
"""Before any OCPP-J charger (OCPP 1.6 is from 2015): an earlier time is a clock reset (1970,
2000, year 1), replaced by the receive time. Not a window behind the receive time: offline
queues deliver late (days, after an outage), and replaying a journal must give the same result."""
MAX_MULTIPLIER = 30
"""2.0.1 ``unitOfMeasure.multiplier`` is a power of ten; real meters use -3..6. Beyond 1e+-30
nothing physical is left (and 10.0**400 overflows)."""
MAX_EVSE_ID = 10_000
"""EVSE / connector numbers: far above any real station, far below int32 (PostgreSQL INTEGER)."""
MAX_REGISTER_WH = 1e11
"""100 GWh: a 350 kW charger at full power for 30 years is 9.2e10 Wh."""
MAX_POWER_W = 1e7
"""10 MW: ten megawatt chargers' worth."""

BOUNDS: Mapping[Measurand, tuple[float, float]] = {
    Measurand.ENERGY_IMPORT_REGISTER: (0.0, MAX_REGISTER_WH),
    Measurand.ENERGY_IMPORT_INTERVAL: (-MAX_REGISTER_WH, MAX_REGISTER_WH),
    Measurand.POWER_IMPORT: (-MAX_POWER_W, MAX_POWER_W),  # W
    Measurand.POWER_OFFERED: (0.0, MAX_POWER_W),
    Measurand.CURRENT_IMPORT: (-1e4, 1e4),  # A
    Measurand.CURRENT_OFFERED: (0.0, 1e4),
    Measurand.VOLTAGE: (0.0, 1e4),  # V: DC chargers reach 1,000 V
    Measurand.SOC: (0.0, 100.0),  # %
    Measurand.TEMPERATURE: (-273.15, 1e3),  # Celsius: not below absolute zero
    Measurand.FREQUENCY: (0.0, 1e3),  # Hz
    Measurand.OTHER: (-1e12, 1e12),  # measurands ems does not use: finite and sane
}
"""Physical bounds per measurand, in base units (after unit scaling and multiplier)."""

MAX_PLANNING_AHEAD = timedelta(days=7)
"""A departure time further ahead than a week is not a plan the optimizer can use."""

_AHEAD = timedelta(seconds=MAX_AHEAD_S)


class Unusable(ValueError):
    """A schema-valid message ems cannot apply; the text is the quarantine reason."""


@dataclass(frozen=True, slots=True)
class StationTime:
    at: datetime
    """Timezone-aware UTC; the receive time when the station's could not be used."""
    flag: str | None = None


def station_time(text: object, received_at: datetime) -> StationTime:
    """A station's ``dateTime`` checked against our receive time (see the module rules)."""
    if not isinstance(text, str) or not text:
        return StationTime(received_at)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        # OCPP says UTC; a naive time is read as UTC. astimezone overflows at year 1 / 9999.
        at = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return StationTime(received_at, FLAG_TIME_UNREADABLE)
    try:
        if at > received_at + _AHEAD:
            return StationTime(received_at, FLAG_CLOCK_AHEAD)
        if at < EARLIEST:
            return StationTime(received_at, FLAG_CLOCK_BEHIND)
    except OverflowError:  # received_at itself near datetime.min/max: only in tests
        return StationTime(received_at, FLAG_TIME_UNREADABLE)
    return StationTime(at)


def future_time(text: object, received_at: datetime, max_ahead: timedelta = MAX_PLANNING_AHEAD) -> datetime | None:
    """A time the station says lies ahead (an EV's departure): ``None`` if unreadable or past ``max_ahead``."""
    checked = station_time(text, received_at + max_ahead)
    if checked.flag is not None or not isinstance(text, str) or not text:
        return None
    return checked.at


def number(raw: object) -> float | None:
    """A finite float from a JSON number or numeric string; ``None`` otherwise (never raises)."""
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # float(10**400) overflows
        return None
    return value if math.isfinite(value) else None


def scaled_value(
    number_in_unit: float, scale: float, offset: float, multiplier: int, measurand: Measurand
) -> float | None:
    """``number * 10**multiplier * scale + offset`` in base units, or ``None`` if not finite or out of bounds."""
    if not -MAX_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
        return None
    value = number_in_unit * (10.0**multiplier) * scale + offset
    if not math.isfinite(value):
        return None
    low, high = BOUNDS.get(measurand, BOUNDS[Measurand.OTHER])
    return value if low <= value <= high else None


def register_or_none(raw: object) -> float | None:
    """An energy register (Wh) at start or stop: ``None`` (unknown) if not a number within bounds."""
    value = number(raw)
    if value is None:
        return None
    low, high = BOUNDS[Measurand.ENERGY_IMPORT_REGISTER]
    return value if low <= value <= high else None


def evse_number(raw: object, what: str = "evseId") -> int:
    """An EVSE or connector number in 0..``MAX_EVSE_ID``; ``Unusable`` otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_EVSE_ID:
        shown = repr(raw)[:40]
        raise Unusable(f"{what} {shown} is not a number in 0..{MAX_EVSE_ID}")
    return raw


def clean_text(text: str) -> str:
    """``text`` without lone surrogates and NUL (each becomes U+FFFD)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from a JSON "\\ud800" escape
            text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def clean_payload(value: Any) -> Any:
    """A copy of a decoded JSON value whose strings (keys too) passed ``clean_text``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): clean_payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_payload(v) for v in value]
    return value
