"""Command rendering for both versions, checked against the library's official JSON schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, _validate_payload
from ocpp.v16 import call_result as r16

from ems.domain import commands as cmd
from ems.domain.commands import CommandStatus, StationCommand
from ems.domain.station import OcppVersion
from ems.ocpp.translate import NotSupportedByVersion, call_error_result, command_result, render_command

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LIB_VERSION = {OcppVersion.V16: "1.6", OcppVersion.V201: "2.0.1"}

PROFILE = cmd.SetChargingLimit(
    evse_id=1,
    profile_id=7,
    purpose="ChargePointMaxProfile",
    rate_unit="A",
    periods=(
        cmd.ChargingSchedulePeriod(start_offset_s=0, limit=16.04),
        cmd.ChargingSchedulePeriod(start_offset_s=900, limit=10),
    ),
    start_at=T0,
    duration_s=3600,
)
REF = cmd.VariableRef(component="SmartChargingCtrlr", variable="Enabled", evse_id=1)

BOTH = [
    cmd.RemoteStart(id_tag="card-1", evse_id=1, charging_limit_w=7400),
    cmd.RemoteStop(transaction_id="42"),
    PROFILE,
    cmd.SetChargingLimit(
        evse_id=1,
        profile_id=8,
        periods=(cmd.ChargingSchedulePeriod(start_offset_s=0, limit=7400.0),),
        transaction_id="42",
    ),
    cmd.ClearChargingLimit(profile_id=7),
    cmd.ClearChargingLimit(evse_id=1, purpose="TxDefaultProfile"),
    cmd.GetCompositeSchedule(evse_id=1, duration_s=3600, rate_unit="W"),
    cmd.ChangeAvailability(availability=cmd.Availability.INOPERATIVE, evse_id=1),
    cmd.ChangeAvailability(availability=cmd.Availability.OPERATIVE),
    cmd.Reset(kind=cmd.ResetKind.HARD),
    cmd.UnlockConnector(evse_id=1),
    cmd.TriggerMessage(message="StatusNotification", evse_id=1),
    cmd.SendLocalList(
        version=3,
        entries=(cmd.LocalListEntry(id_tag="a", expires_at=T0), cmd.LocalListEntry(id_tag="b", status=None)),
        full=False,
    ),
    cmd.GetLocalListVersion(),
    cmd.ReserveNow(reservation_id=5, id_tag="card-1", expires_at=T0, evse_id=1),
    cmd.CancelReservation(reservation_id=5),
    cmd.UpdateFirmware(location="https://fw.example/1.bin", retrieve_at=T0, retries=2),
    cmd.UploadDiagnostics(location="ftp://logs.example/", since=T0),
]
V16_ONLY = [
    cmd.GetConfiguration(keys=("HeartbeatInterval",)),
    cmd.GetConfiguration(),
    cmd.ChangeConfiguration(key="HeartbeatInterval", value="60"),
]
V201_ONLY = [cmd.GetVariables(variables=(REF,)), cmd.SetVariables(values=(cmd.VariableValue(ref=REF, value="true"),))]


def wire(payload: Any) -> dict[str, Any]:
    """What the library puts on the wire for ``payload`` (same steps as ChargePoint.call)."""
    return remove_nones(snake_to_camel_case(serialize_as_dict(payload)))  # type: ignore[no-any-return]


def validate(command: StationCommand, version: OcppVersion) -> dict[str, Any]:
    payload = render_command(command, version)
    body = wire(payload)
    _validate_payload(Call("1", type(payload).__name__, body), LIB_VERSION[version])
    return body


@pytest.mark.parametrize("command", BOTH + V16_ONLY, ids=lambda c: c.name)
def test_v16_rendering_is_schema_valid(command: StationCommand) -> None:
    validate(command, OcppVersion.V16)


@pytest.mark.parametrize("command", BOTH + V201_ONLY, ids=lambda c: c.name)
def test_v201_rendering_is_schema_valid(command: StationCommand) -> None:
    validate(command, OcppVersion.V201)


@pytest.mark.parametrize(
    ("command", "version"), [(c, OcppVersion.V201) for c in V16_ONLY] + [(c, OcppVersion.V16) for c in V201_ONLY]
)
def test_version_specific_commands_are_refused_for_the_other_version(
    command: StationCommand, version: OcppVersion
) -> None:
    with pytest.raises(NotSupportedByVersion):
        render_command(command, version)


def test_every_command_is_covered() -> None:
    assert {c.name for c in BOTH + V16_ONLY + V201_ONLY} == set(cmd.COMMANDS)


def test_max_profile_purpose_is_renamed_per_version_and_limits_rounded() -> None:
    v16 = validate(PROFILE, OcppVersion.V16)["csChargingProfiles"]
    v201 = validate(PROFILE, OcppVersion.V201)["chargingProfile"]
    assert v16["chargingProfilePurpose"] == "ChargePointMaxProfile"
    assert v201["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert v16["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
    assert v201["chargingSchedule"][0]["chargingRateUnit"] == "A"
    assert v16["chargingProfileKind"] == "Absolute"


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from(["A", "W"]))
def test_any_limit_renders_schema_valid(limit: float, unit: str) -> None:
    command = cmd.SetChargingLimit(
        evse_id=1, profile_id=1, rate_unit=unit, periods=(cmd.ChargingSchedulePeriod(start_offset_s=0, limit=limit),)
    )
    for version in OcppVersion:
        validate(command, version)


def test_tx_profile_carries_transaction_id_typed_per_version() -> None:
    c = BOTH[3]
    assert validate(c, OcppVersion.V16)["csChargingProfiles"]["transactionId"] == 42
    assert validate(c, OcppVersion.V201)["chargingProfile"]["transactionId"] == "42"


@pytest.mark.parametrize(
    ("response", "status", "detail"),
    [
        (r16.RemoteStartTransaction(status="Accepted"), CommandStatus.ACCEPTED, "Accepted"),
        (r16.RemoteStartTransaction(status="Rejected"), CommandStatus.REJECTED, "Rejected"),
        (r16.ChangeConfiguration(status="RebootRequired"), CommandStatus.ACCEPTED, "RebootRequired"),
        (r16.ChangeConfiguration(status="NotSupported"), CommandStatus.NOT_SUPPORTED, "NotSupported"),
        (r16.UnlockConnector(status="UnlockFailed"), CommandStatus.REJECTED, "UnlockFailed"),
        (r16.GetLocalListVersion(list_version=3), CommandStatus.ACCEPTED, None),
        ({"status": "Scheduled"}, CommandStatus.ACCEPTED, "Scheduled"),
    ],
)
def test_command_result_mapping(response: Any, status: CommandStatus, detail: str | None) -> None:
    result = command_result(response)
    assert result.status is status and result.detail == detail


def test_command_result_keeps_data() -> None:
    result = command_result(r16.GetConfiguration(configuration_key=[{"key": "A", "readonly": False, "value": "1"}]))
    assert result.ok and result.data["configuration_key"][0]["key"] == "A"


def test_call_errors_map_to_not_supported_or_rejected() -> None:
    assert call_error_result("NotImplemented", "x").status is CommandStatus.NOT_SUPPORTED
    assert call_error_result("NotSupported", None).status is CommandStatus.NOT_SUPPORTED
    assert call_error_result("InternalError", "boom").status is CommandStatus.REJECTED
