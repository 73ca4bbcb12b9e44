"""Meter values, both versions, normalized for billing.

Pure. ``meter_samples_v16`` / ``meter_samples_v201``: a ``meterValue`` list -> ``MeterSample``
values in base units (Wh, W, A, V, %, Celsius, Hz), raw value and unit kept. A value that is
not a number (1.6 ``SignedData``, garbage) becomes a sample flagged ``FLAG_UNPARSEABLE`` with
value 0; a value that is not finite after unit scaling and multiplier, or outside its
measurand's physical bounds (``edge.BOUNDS``), is flagged ``FLAG_OUT_OF_RANGE`` with value 0; a
timestamp the edge replaced by the receive time flags the sample with why (``TIME_FLAGS``).
Nothing here raises on station data.

The register tracking (``track_register``, ``apply_register``, ``power_w``) is pure domain
logic and lives in ``ems.domain.register``; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from ems.domain.register import (
    FLAG_BACKWARDS,
    FLAG_OUT_OF_RANGE,
    FLAG_RESET,
    FLAG_UNPARSEABLE,
    REGISTER_TOLERANCE_WH,
    RESET_FRACTION,
    RegisterState,
    apply_register,
    power_w,
    register_wh,
    track_register,
)
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.ocpp.translate.edge import number, scaled_value, station_time
from ems.ocpp.translate.wire import Payload

__all__ = [
    "FLAG_BACKWARDS",
    "FLAG_OUT_OF_RANGE",
    "FLAG_RESET",
    "FLAG_UNPARSEABLE",
    "REGISTER_TOLERANCE_WH",
    "RESET_FRACTION",
    "RegisterState",
    "apply_register",
    "meter_samples_v16",
    "meter_samples_v201",
    "power_w",
    "register_wh",
    "track_register",
]

MAX_RAW_CHARS = 400
"""The raw value kept for audit, cut to 400 characters: it is part of the sample's natural key
(a PostgreSQL btree entry holds at most 2,712 bytes); the audit frame log keeps whole frames."""

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
    """(value in base unit, flag): finiteness and bounds are checked after scaling (edge rules)."""
    read = number(raw)
    if read is None:
        return 0.0, FLAG_UNPARSEABLE
    scale, offset = _UNITS.get(unit or _DEFAULT_UNIT.get(measurand, ""), (1.0, 0.0))
    value = scaled_value(read, scale, offset, multiplier, measurand)
    return (0.0, FLAG_OUT_OF_RANGE) if value is None else (value, None)


def _sample(
    *,
    station_id: str,
    evse_id: int,
    session_id: str | None,
    at: datetime,
    time_flag: str | None,
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
        raw_value=str(raw)[:MAX_RAW_CHARS],
        raw_unit=unit if multiplier == 0 else f"{unit or ''}e{multiplier}",
        flag=flag or time_flag,
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
        checked = station_time(mv.get("timestamp"), received_at)
        for sv in mv.get("sampledValue", ()):
            unit, multiplier = unit_of(sv)
            out.append(
                _sample(
                    station_id=station_id,
                    evse_id=evse_id,
                    session_id=session_id,
                    at=checked.at,
                    time_flag=checked.flag,
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
