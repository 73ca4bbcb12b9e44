"""Meter values, both versions, normalized for billing.

Two steps, both pure:

1. ``meter_samples_v16`` / ``meter_samples_v201``: a ``meterValue`` list -> ``MeterSample``
   values in base units (Wh, W, A, V, %, Celsius, Hz), raw value and unit kept. A value
   that is not a number (1.6 ``SignedData``, garbage) becomes a sample flagged
   ``FLAG_UNPARSEABLE`` with value 0; nothing here raises on station data.
2. ``track_register``: the energy register of one session, across readings. Chargers report
   ``Energy.Active.Import.Register`` either as the lifetime register (the spec) or relative
   to the session start, and registers reset (meter swap, firmware update) or jitter
   backwards. The tracker turns every reading into a lifetime-register value, flags the
   suspicious ones, and never lets session energy go down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.ocpp.translate.wire import Payload, parse_time

FLAG_UNPARSEABLE = "unparseable"
FLAG_BACKWARDS = "register_backwards"
FLAG_RESET = "register_reset"

REGISTER_TOLERANCE_WH = 1.0
"""Jitter allowed before a lower reading counts as going backwards: meters round to 1 Wh."""

RESET_FRACTION = 0.5
"""A reading below half the last register value is a reset (new meter / firmware), not jitter."""

_MEASURANDS = {m.value: m for m in Measurand}
_CONTEXTS = {c.value: c for c in ReadingContext}

# unit -> (scale to base unit, offset after scaling); Fahrenheit and Kelvin go to Celsius.
_UNITS: dict[str, tuple[float, float]] = {
    "Wh": (1.0, 0.0),
    "kWh": (1000.0, 0.0),
    "varh": (1.0, 0.0),
    "kvarh": (1000.0, 0.0),
    "W": (1.0, 0.0),
    "kW": (1000.0, 0.0),
    "VA": (1.0, 0.0),
    "kVA": (1000.0, 0.0),
    "var": (1.0, 0.0),
    "kvar": (1000.0, 0.0),
    "A": (1.0, 0.0),
    "V": (1.0, 0.0),
    "Celsius": (1.0, 0.0),
    "Fahrenheit": (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    "K": (1.0, -273.15),
    "Percent": (1.0, 0.0),
    "Hz": (1.0, 0.0),
}

_DEFAULT_UNIT = {
    Measurand.ENERGY_IMPORT_REGISTER: "Wh",
    Measurand.ENERGY_IMPORT_INTERVAL: "Wh",
    Measurand.POWER_IMPORT: "W",
    Measurand.POWER_OFFERED: "W",
    Measurand.CURRENT_IMPORT: "A",
    Measurand.CURRENT_OFFERED: "A",
    Measurand.VOLTAGE: "V",
    Measurand.SOC: "Percent",
    Measurand.TEMPERATURE: "Celsius",
    Measurand.FREQUENCY: "Hz",
}


def _normalize(raw: object, unit: str | None, multiplier: int, measurand: Measurand) -> tuple[float, str | None]:
    """(value in base unit, flag)."""
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0, FLAG_UNPARSEABLE
    if not math.isfinite(number):
        return 0.0, FLAG_UNPARSEABLE
    scale, offset = _UNITS.get(unit or _DEFAULT_UNIT.get(measurand, ""), (1.0, 0.0))
    return number * (10.0**multiplier) * scale + offset, None


def _sample(
    *,
    station_id: str,
    evse_id: int,
    session_id: str | None,
    at: datetime,
    sampled: Payload,
    context_default: ReadingContext,
    raw: object,
    unit: str | None,
    multiplier: int,
) -> MeterSample:
    measurand = _MEASURANDS.get(sampled.get("measurand", Measurand.ENERGY_IMPORT_REGISTER.value), Measurand.OTHER)
    value, flag = _normalize(raw, unit, multiplier, measurand)
    return MeterSample(
        station_id=station_id,
        evse_id=evse_id,
        measured_at=at,
        measurand=measurand,
        value=value,
        session_id=session_id,
        phase=sampled.get("phase"),
        context=_CONTEXTS.get(sampled.get("context", ""), context_default),
        raw_value=str(raw),
        raw_unit=unit if multiplier == 0 else f"{unit or ''}e{multiplier}",
        flag=flag,
    )


def _unit_v16(sv: Payload) -> tuple[str | None, int]:
    return sv.get("unit"), 0


def _unit_v201(sv: Payload) -> tuple[str | None, int]:
    uom = sv.get("unitOfMeasure") or {}
    multiplier = uom.get("multiplier", 0)
    return uom.get("unit"), multiplier if isinstance(multiplier, int) else 0


def _meter_samples(
    meter_values: Iterable[Payload],
    unit_of: Callable[[Payload], tuple[str | None, int]],
    *,
    station_id: str,
    evse_id: int,
    session_id: str | None,
    received_at: datetime,
    context_default: ReadingContext,
) -> list[MeterSample]:
    out: list[MeterSample] = []
    for mv in meter_values:
        at = parse_time(mv.get("timestamp"), received_at)
        for sv in mv.get("sampledValue", ()):
            unit, multiplier = unit_of(sv)
            out.append(
                _sample(
                    station_id=station_id,
                    evse_id=evse_id,
                    session_id=session_id,
                    at=at,
                    sampled=sv,
                    context_default=context_default,
                    raw=sv.get("value"),
                    unit=unit,
                    multiplier=multiplier,
                )
            )
    return out


def meter_samples_v16(
    meter_values: Iterable[Payload],
    *,
    station_id: str,
    evse_id: int,
    session_id: str | None,
    received_at: datetime,
    context_default: ReadingContext = ReadingContext.SAMPLE_PERIODIC,
) -> list[MeterSample]:
    """1.6 ``MeterValue[]`` (``MeterValues.meterValue`` or ``StopTransaction.transactionData``)."""
    return _meter_samples(
        meter_values,
        _unit_v16,
        station_id=station_id,
        evse_id=evse_id,
        session_id=session_id,
        received_at=received_at,
        context_default=context_default,
    )


def meter_samples_v201(
    meter_values: Iterable[Payload],
    *,
    station_id: str,
    evse_id: int,
    session_id: str | None,
    received_at: datetime,
    context_default: ReadingContext = ReadingContext.SAMPLE_PERIODIC,
) -> list[MeterSample]:
    """2.0.1 ``MeterValueType[]`` (MeterValues or TransactionEvent); ``unitOfMeasure.multiplier`` is a power of 10."""
    return _meter_samples(
        meter_values,
        _unit_v201,
        station_id=station_id,
        evse_id=evse_id,
        session_id=session_id,
        received_at=received_at,
        context_default=context_default,
    )


def register_wh(samples: Iterable[MeterSample]) -> float | None:
    """The last unflagged whole-meter energy register reading in ``samples`` (Wh), if any."""
    value = None
    for s in samples:
        if s.measurand is Measurand.ENERGY_IMPORT_REGISTER and s.phase is None and s.flag is None:
            value = s.value
    return value


@dataclass(frozen=True, slots=True)
class RegisterState:
    """The energy register of one session as far as readings have shown it.

    ``meter_start_wh``: lifetime register at start (``None``: the station did not say).
    ``last_wh``: highest trusted lifetime reading so far. ``relative``: the station reports
    session-relative values (``None``: not decided yet). ``offset_wh``: added to readings after
    a reset so the lifetime register keeps counting up.
    Invariant: ``last_wh`` never decreases, so session energy never decreases.
    """

    meter_start_wh: float | None
    last_wh: float | None = None
    relative: bool | None = None
    offset_wh: float = 0.0

    @property
    def energy_wh(self) -> float:
        if self.last_wh is None or self.meter_start_wh is None:
            return 0.0
        return max(0.0, self.last_wh - self.meter_start_wh)


def track_register(state: RegisterState, reading_wh: float) -> tuple[RegisterState, float, str | None]:
    """Fold one ``Energy.Active.Import.Register`` reading (Wh) into ``state``.

    Returns (new state, the reading as a lifetime register in Wh, flag or ``None``).
    The first reading decides lifetime vs relative: a first reading below the start
    register means the station counts from the session start.
    """
    start = state.meter_start_wh
    relative = state.relative
    if relative is None:
        relative = start is not None and reading_wh < start - REGISTER_TOLERANCE_WH
    lifetime = reading_wh + state.offset_wh + (start if relative and start is not None else 0.0)
    last = state.last_wh if state.last_wh is not None else start
    if last is None or lifetime >= last - REGISTER_TOLERANCE_WH:
        new_last = lifetime if last is None else max(last, lifetime)
        return replace(state, relative=relative, last_wh=new_last), lifetime, None
    if lifetime < last * RESET_FRACTION:
        # A reset: the meter starts again from (about) zero; keep counting on from the last value.
        offset = state.offset_wh + (last - lifetime)
        return replace(state, relative=relative, last_wh=last, offset_wh=offset), last, FLAG_RESET
    return replace(state, relative=relative, last_wh=last), lifetime, FLAG_BACKWARDS


def apply_register(state: RegisterState, samples: list[MeterSample]) -> tuple[RegisterState, list[MeterSample]]:
    """Run every whole-meter register sample through ``track_register``; other samples pass unchanged.

    A register sample's ``value`` becomes the lifetime register; a flagged one keeps its flag.
    Samples are taken in time order (offline queues deliver late), the output keeps input order.
    """
    order = sorted(range(len(samples)), key=lambda i: samples[i].measured_at)
    out = list(samples)
    for i in order:
        s = samples[i]
        if s.measurand is not Measurand.ENERGY_IMPORT_REGISTER or s.phase is not None or s.flag is not None:
            continue
        state, lifetime, flag = track_register(state, s.value)
        out[i] = replace(s, value=lifetime, flag=flag)
    return state, out


def power_w(samples: Iterable[MeterSample]) -> float | None:
    """The latest whole-meter active power (W) in ``samples``, summing phases if no total is given."""
    latest: MeterSample | None = None
    phases: dict[str, float] = {}
    for s in samples:
        if s.measurand is not Measurand.POWER_IMPORT or s.flag is not None:
            continue
        if s.phase is None:
            if latest is None or s.measured_at >= latest.measured_at:
                latest = s
        else:
            phases[s.phase] = s.value
    if latest is not None:
        return latest.value
    per_line = [v for p, v in phases.items() if p in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")]
    return sum(per_line) if per_line else None
