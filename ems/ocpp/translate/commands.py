"""Version-neutral ``StationCommand`` -> the ``ocpp`` library's ``call.*`` payload, and the answer back.

Pure: rendering reads only the command (times are in the command). The library's
``call`` modules are plain dataclasses. Numbers: OCPP 1.6 schedules allow one decimal
(``multipleOf 0.1``), so limits are rounded to 0.1 A / 0.1 W.

Physics stays here, not in the code that sends: the profile purpose name differs by
version (``ChargePointMaxProfile`` in 1.6, ``ChargingStationMaxProfile`` in 2.0.1), and
1.6 addresses the whole station as connector 0 where 2.0.1 uses EVSE 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ems.domain import commands as cmd
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.domain.station import OcppVersion
from ems.ocpp.translate.wire import Payload, format_time


class NotSupportedByVersion(Exception):
    """The command has no equivalent in this OCPP version (e.g. GetConfiguration on 2.0.1)."""


_PURPOSE_V201 = {cmd.ProfilePurpose.CHARGE_POINT_MAX_PROFILE: "ChargingStationMaxProfile"}
_PURPOSE_V16 = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}


def _limit(value: float) -> float:
    return round(value, 1)


def _schedule(c: cmd.SetChargingLimit) -> Payload:
    periods: list[Payload] = []
    for p in c.periods:
        period: Payload = {"start_period": p.start_offset_s, "limit": _limit(p.limit)}
        if p.number_phases is not None:
            period["number_phases"] = p.number_phases
        periods.append(period)
    schedule: Payload = {"charging_rate_unit": c.rate_unit, "charging_schedule_period": periods}
    if c.duration_s is not None:
        schedule["duration"] = c.duration_s
    if c.start_at is not None:
        schedule["start_schedule"] = format_time(c.start_at)
    return schedule


def charging_profile_v16(c: cmd.SetChargingLimit) -> Payload:
    """1.6 ``csChargingProfiles`` (snake_case: the library camelCases it)."""
    profile: Payload = {
        "charging_profile_id": c.profile_id,
        "stack_level": c.stack_level,
        "charging_profile_purpose": _PURPOSE_V16.get(c.purpose, c.purpose),
        "charging_profile_kind": "Absolute" if c.start_at is not None else "Relative",
        "charging_schedule": _schedule(c),
    }
    if c.transaction_id is not None and profile["charging_profile_purpose"] == cmd.ProfilePurpose.TX_PROFILE:
        profile["transaction_id"] = int(c.transaction_id)
    return profile


def charging_profile_v201(c: cmd.SetChargingLimit) -> Payload:
    schedule = _schedule(c) | {"id": c.profile_id}
    profile: Payload = {
        "id": c.profile_id,
        "stack_level": c.stack_level,
        "charging_profile_purpose": _PURPOSE_V201.get(c.purpose, c.purpose),
        "charging_profile_kind": "Absolute" if c.start_at is not None else "Relative",
        "charging_schedule": [schedule],
    }
    if c.transaction_id is not None and profile["charging_profile_purpose"] == cmd.ProfilePurpose.TX_PROFILE:
        profile["transaction_id"] = c.transaction_id
    return profile


def _start_limit_profile(limit_w: float, profile_id: int) -> cmd.SetChargingLimit:
    return cmd.SetChargingLimit(
        evse_id=0,
        profile_id=profile_id,
        purpose=cmd.ProfilePurpose.TX_PROFILE,
        periods=(cmd.ChargingSchedulePeriod(start_offset_s=0, limit=limit_w),),
    )


REMOTE_START_PROFILE_ID = 1
"""Profile id used for the limit sent along with a remote start."""


def _iso(when: datetime | None) -> str | None:
    return None if when is None else format_time(when)


def _render_v16(c: StationCommand) -> Any:
    match c:
        case cmd.RemoteStart():
            profile = None
            if c.charging_limit_w is not None:
                profile = charging_profile_v16(_start_limit_profile(c.charging_limit_w, REMOTE_START_PROFILE_ID))
            return c16.RemoteStartTransaction(id_tag=c.id_tag, connector_id=c.evse_id, charging_profile=profile)
        case cmd.RemoteStop():
            return c16.RemoteStopTransaction(transaction_id=int(c.transaction_id))
        case cmd.SetChargingLimit():
            return c16.SetChargingProfile(connector_id=c.evse_id, cs_charging_profiles=charging_profile_v16(c))
        case cmd.ClearChargingLimit():
            purpose = None if c.purpose is None else _PURPOSE_V16.get(c.purpose, c.purpose)
            return c16.ClearChargingProfile(
                id=c.profile_id, connector_id=c.evse_id, charging_profile_purpose=purpose, stack_level=c.stack_level
            )
        case cmd.GetCompositeSchedule():
            return c16.GetCompositeSchedule(
                connector_id=c.evse_id, duration=c.duration_s, charging_rate_unit=c.rate_unit
            )
        case cmd.ChangeAvailability():
            return c16.ChangeAvailability(connector_id=c.evse_id or 0, type=c.availability.value)
        case cmd.Reset():
            return c16.Reset(type=c.kind.value)
        case cmd.UnlockConnector():
            return c16.UnlockConnector(connector_id=c.evse_id)
        case cmd.TriggerMessage():
            return c16.TriggerMessage(requested_message=c.message, connector_id=c.evse_id)
        case cmd.GetConfiguration():
            return c16.GetConfiguration(key=list(c.keys) or None)
        case cmd.ChangeConfiguration():
            return c16.ChangeConfiguration(key=c.key, value=c.value)
        case cmd.SendLocalList():
            entries = []
            for e in c.entries:
                entry: Payload = {"id_tag": e.id_tag}
                if e.status is not None:
                    entry["id_tag_info"] = {"status": e.status} | (
                        {"expiry_date": format_time(e.expires_at)} if e.expires_at else {}
                    )
                entries.append(entry)
            return c16.SendLocalList(
                list_version=c.version,
                update_type="Full" if c.full else "Differential",
                local_authorization_list=entries,
            )
        case cmd.GetLocalListVersion():
            return c16.GetLocalListVersion()
        case cmd.ReserveNow():
            return c16.ReserveNow(
                connector_id=c.evse_id or 0,
                expiry_date=format_time(c.expires_at),
                id_tag=c.id_tag,
                reservation_id=c.reservation_id,
            )
        case cmd.CancelReservation():
            return c16.CancelReservation(reservation_id=c.reservation_id)
        case cmd.UpdateFirmware():
            return c16.UpdateFirmware(
                location=c.location,
                retrieve_date=format_time(c.retrieve_at),
                retries=c.retries,
                retry_interval=c.retry_interval_s,
            )
        case cmd.UploadDiagnostics():
            return c16.GetDiagnostics(
                location=c.location,
                retries=c.retries,
                retry_interval=c.retry_interval_s,
                start_time=_iso(c.since),
                stop_time=_iso(c.until),
            )
    raise NotSupportedByVersion(f"{c.name} is not an OCPP 1.6 command")


def _variable(ref: cmd.VariableRef) -> tuple[Payload, Payload]:
    component: Payload = {"name": ref.component}
    if ref.evse_id is not None:
        component["evse"] = {"id": ref.evse_id}
    variable: Payload = {"name": ref.variable}
    if ref.instance is not None:
        variable["instance"] = ref.instance
    return component, variable


def _render_v201(c: StationCommand) -> Any:
    match c:
        case cmd.RemoteStart():
            profile = None
            if c.charging_limit_w is not None:
                profile = charging_profile_v201(_start_limit_profile(c.charging_limit_w, REMOTE_START_PROFILE_ID))
            return c201.RequestStartTransaction(
                id_token={"id_token": c.id_tag, "type": "Central"},
                remote_start_id=c.remote_start_id if c.remote_start_id is not None else 1,
                evse_id=c.evse_id,
                charging_profile=profile,
            )
        case cmd.RemoteStop():
            return c201.RequestStopTransaction(transaction_id=c.transaction_id)
        case cmd.SetChargingLimit():
            return c201.SetChargingProfile(evse_id=c.evse_id, charging_profile=charging_profile_v201(c))
        case cmd.ClearChargingLimit():
            criteria: Payload = {}
            if c.evse_id is not None:
                criteria["evse_id"] = c.evse_id
            if c.purpose is not None:
                criteria["charging_profile_purpose"] = _PURPOSE_V201.get(c.purpose, c.purpose)
            if c.stack_level is not None:
                criteria["stack_level"] = c.stack_level
            return c201.ClearChargingProfile(
                charging_profile_id=c.profile_id, charging_profile_criteria=criteria or None
            )
        case cmd.GetCompositeSchedule():
            return c201.GetCompositeSchedule(duration=c.duration_s, evse_id=c.evse_id, charging_rate_unit=c.rate_unit)
        case cmd.ChangeAvailability():
            evse = None if not c.evse_id else {"id": c.evse_id}
            return c201.ChangeAvailability(operational_status=c.availability.value, evse=evse)
        case cmd.Reset():
            return c201.Reset(type="OnIdle" if c.kind is cmd.ResetKind.SOFT else "Immediate")
        case cmd.UnlockConnector():
            return c201.UnlockConnector(evse_id=c.evse_id, connector_id=c.connector_id)
        case cmd.TriggerMessage():
            evse = None if c.evse_id is None else {"id": c.evse_id}
            return c201.TriggerMessage(requested_message=c.message, evse=evse)
        case cmd.GetVariables():
            data: list[Payload] = []
            for ref in c.variables:
                component, variable = _variable(ref)
                data.append({"component": component, "variable": variable})
            return c201.GetVariables(get_variable_data=data)
        case cmd.SetVariables():
            data = []
            for v in c.values:
                component, variable = _variable(v.ref)
                data.append({"attribute_value": v.value, "component": component, "variable": variable})
            return c201.SetVariables(set_variable_data=data)
        case cmd.SendLocalList():
            entries = []
            for e in c.entries:
                entry: Payload = {"id_token": {"id_token": e.id_tag, "type": "ISO14443"}}
                if e.status is not None:
                    entry["id_token_info"] = {"status": e.status} | (
                        {"cache_expiry_date_time": format_time(e.expires_at)} if e.expires_at else {}
                    )
                entries.append(entry)
            return c201.SendLocalList(
                version_number=c.version,
                update_type="Full" if c.full else "Differential",
                local_authorization_list=entries or None,
            )
        case cmd.GetLocalListVersion():
            return c201.GetLocalListVersion()
        case cmd.ReserveNow():
            return c201.ReserveNow(
                id=c.reservation_id,
                expiry_date_time=format_time(c.expires_at),
                id_token={"id_token": c.id_tag, "type": "ISO14443"},
                evse_id=c.evse_id or None,
            )
        case cmd.CancelReservation():
            return c201.CancelReservation(reservation_id=c.reservation_id)
        case cmd.UpdateFirmware():
            return c201.UpdateFirmware(
                request_id=c.request_id,
                firmware={"location": c.location, "retrieve_date_time": format_time(c.retrieve_at)},
                retries=c.retries,
                retry_interval=c.retry_interval_s,
            )
        case cmd.UploadDiagnostics():
            log: Payload = {"remote_location": c.location}
            if c.since is not None:
                log["oldest_timestamp"] = format_time(c.since)
            if c.until is not None:
                log["latest_timestamp"] = format_time(c.until)
            return c201.GetLog(
                log=log,
                log_type="DiagnosticsLog",
                request_id=c.request_id,
                retries=c.retries,
                retry_interval=c.retry_interval_s,
            )
    raise NotSupportedByVersion(f"{c.name} is not an OCPP 2.0.1 command")


_RENDERERS: dict[OcppVersion, Callable[[StationCommand], Any]] = {
    OcppVersion.V16: _render_v16,
    OcppVersion.V201: _render_v201,
}


def render_command(command: StationCommand, version: OcppVersion) -> Any:
    """The library ``call.*`` dataclass for ``command``; raises ``NotSupportedByVersion``."""
    return _RENDERERS[version](command)


ACCEPTED_WORDS = frozenset({"Accepted", "Scheduled", "RebootRequired", "Unlocked", "AcceptedCanceled"})
"""Station status words meaning "done, or will be done"; ``detail`` keeps the exact word."""
NOT_SUPPORTED_WORDS = frozenset({"NotSupported", "NotImplemented", "UnknownConnector"})


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def command_result(response: Any) -> CommandResult:
    """A library ``call_result.*`` (or a plain dict) -> ``CommandResult``.

    The ``status`` word decides: accepted words -> ACCEPTED, NotSupported -> NOT_SUPPORTED,
    anything else -> REJECTED. Answers without a status (GetConfiguration, GetLocalListVersion,
    GetVariables) are ACCEPTED with their content in ``data``.
    """
    data = _plain(response)
    if not isinstance(data, dict):
        return CommandResult(CommandStatus.REJECTED, detail=f"unexpected answer {data!r}")
    word = data.pop("status", None)
    if isinstance(word, str):
        if word in ACCEPTED_WORDS:
            status = CommandStatus.ACCEPTED
        elif word in NOT_SUPPORTED_WORDS:
            status = CommandStatus.NOT_SUPPORTED
        else:
            status = CommandStatus.REJECTED
        return CommandResult(status, detail=word, data=data)
    return CommandResult(CommandStatus.ACCEPTED, detail=None, data=data)


CALL_ERROR_STATUS = {
    "NotImplemented": CommandStatus.NOT_SUPPORTED,
    "NotSupported": CommandStatus.NOT_SUPPORTED,
}


def call_error_result(code: str, description: str | None) -> CommandResult:
    """A CALLERROR from the station: NotImplemented / NotSupported -> NOT_SUPPORTED, others REJECTED."""
    return CommandResult(CALL_ERROR_STATUS.get(code, CommandStatus.REJECTED), detail=f"{code}: {description or ''}")
