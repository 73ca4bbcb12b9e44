"""What each station can do with charging profiles, learned and kept per station (pure).

Read at every boot: OCPP 1.6 ``GetConfiguration`` (``ChargingScheduleAllowedChargingRateUnit``,
``ChargeProfileMaxStackLevel``, ``ChargingScheduleMaxPeriods``,
``MaxChargingProfilesInstalled``, ``ConnectorSwitch3to1PhaseSupported``) or 2.0.1
``GetVariables`` on ``SmartChargingCtrlr`` (``RateUnit``, ``ProfileStackLevel``,
``PeriodsPerSchedule``, ``Entries``, ``PhaseSwitchingSupported``). A station that answers
nothing keeps the defaults (A and W, stack levels 0-1, the profile's own periods).

Refusals are learned too: ``refusal_limit`` profiles refused in a row (or one
NOT_SUPPORTED) and the station is one that *will not take profiles*: it is planned as a
fixed load at what it may apply (its last accepted limit, or its maximum), so that the
others make room for it; one accepted profile makes it controllable again.

``shape`` makes a profile fit a station: W when it takes no A, the stack level it has,
no more periods than it takes (the schedule is cut short: past its end the EVSE falls back
to its TxDefaultProfile, never to more than the plan counted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ems.domain.commands import (
    CommandResult,
    CommandStatus,
    GetConfiguration,
    GetVariables,
    RateUnit,
    SetChargingLimit,
    StationCommand,
    VariableRef,
)
from ems.domain.station import OcppVersion

KEYS_V16 = (
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "ConnectorSwitch3to1PhaseSupported",
)
VARIABLES_V201 = ("RateUnit", "ProfileStackLevel", "PeriodsPerSchedule", "Entries", "PhaseSwitchingSupported")


@dataclass(frozen=True, slots=True)
class Capabilities:
    rate_units: frozenset[str] = frozenset({"A", "W"})
    max_stack_level: int | None = None
    max_periods: int | None = None
    max_profiles: int | None = None
    phase_switching: bool | None = None
    learned: bool = False
    """True once the station answered the capability query."""
    refusals: int = 0
    """TxProfiles refused in a row."""
    not_supported: bool = False

    def takes_profiles(self, refusal_limit: int = 2) -> bool:
        return not self.not_supported and self.refusals < refusal_limit


def query(version: OcppVersion) -> StationCommand:
    if version is OcppVersion.V16:
        return GetConfiguration(keys=KEYS_V16)
    return GetVariables(
        variables=tuple(VariableRef(component="SmartChargingCtrlr", variable=v) for v in VARIABLES_V201)
    )


def learn(current: Capabilities, version: OcppVersion, result: CommandResult) -> Capabilities:
    """Fold the answer to ``query`` in; a station that did not answer keeps what was known."""
    if result.status is not CommandStatus.ACCEPTED:
        return current
    values = _values_v16(result.data) if version is OcppVersion.V16 else _values_v201(result.data)
    units = _units(values.get("ChargingScheduleAllowedChargingRateUnit") or values.get("RateUnit"))
    switch = values.get("ConnectorSwitch3to1PhaseSupported") or values.get("PhaseSwitchingSupported")
    return replace(
        current,
        rate_units=units or current.rate_units,
        max_stack_level=_int(values.get("ChargeProfileMaxStackLevel") or values.get("ProfileStackLevel")),
        max_periods=_int(values.get("ChargingScheduleMaxPeriods") or values.get("PeriodsPerSchedule")),
        max_profiles=_int(values.get("MaxChargingProfilesInstalled") or values.get("Entries")),
        phase_switching=None if switch is None else switch.strip().lower() == "true",
        learned=True,
    )


def answered(current: Capabilities, command: SetChargingLimit, status: CommandStatus) -> Capabilities:
    """Count profiles refused in a row (TxProfiles and fail-safe defaults alike)."""
    if status is CommandStatus.ACCEPTED:
        return replace(current, refusals=0, not_supported=False)
    if status is CommandStatus.NOT_SUPPORTED:
        return replace(current, not_supported=True)
    if status is CommandStatus.REJECTED:
        return replace(current, refusals=current.refusals + 1)
    return current


def shape(command: SetChargingLimit, caps: Capabilities, voltage_v: float, phases: int) -> SetChargingLimit:
    """``command`` as this station takes it (unit, stack level, number of periods)."""
    out = command
    if "A" not in caps.rate_units and "W" in caps.rate_units and out.rate_unit == "A":
        out = replace(
            out,
            rate_unit=RateUnit.W,
            periods=tuple(
                replace(p, limit=int(p.limit * voltage_v * (p.number_phases or phases) * 10) / 10) for p in out.periods
            ),
        )
    if caps.max_stack_level is not None and out.stack_level > caps.max_stack_level:
        out = replace(out, stack_level=max(0, caps.max_stack_level))
    if caps.max_periods is not None and caps.max_periods > 0 and len(out.periods) > caps.max_periods:
        kept = out.periods[: caps.max_periods]
        end = out.periods[caps.max_periods].start_offset_s
        out = replace(out, periods=kept, duration_s=end if out.duration_s is None else min(out.duration_s, end))
    return out


def _values_v16(data: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(data.get("configuration_key")):
        if isinstance(item, Mapping) and isinstance(item.get("key"), str) and item.get("value") is not None:
            out[item["key"]] = str(item["value"])
    return out


def _values_v201(data: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(data.get("get_variable_result")):
        if not isinstance(item, Mapping) or item.get("attribute_status") != "Accepted":
            continue
        variable = item.get("variable")
        if isinstance(variable, Mapping) and item.get("attribute_value") is not None:
            out[str(variable.get("name"))] = str(item["attribute_value"])
    return out


def _list(value: object) -> Iterable[object]:
    return value if isinstance(value, list | tuple) else ()


def _units(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    words = {w.strip().lower() for w in value.replace(";", ",").split(",")}
    return frozenset({"A"} if "current" in words or "a" in words else set()) | frozenset(
        {"W"} if "power" in words or "w" in words else set()
    )


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value.strip())
    except ValueError:
        return None
