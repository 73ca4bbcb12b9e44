"""Version-neutral commands to a charging station and their typed results.

The API and the controller build these; ``ems.ocpp`` renders each for OCPP 1.6 or 2.0.1.
A result is never ``None``: it is one of ``CommandStatus`` with the station's detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class CommandStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    TIMEOUT = "TIMEOUT"
    OFFLINE = "OFFLINE"


@dataclass(frozen=True, slots=True)
class CommandResult:
    status: CommandStatus
    detail: str | None = None
    """The station's own status word or error description."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Anything the station returned beyond the status (e.g. a composite schedule, configuration)."""

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.ACCEPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class StationCommand:
    """Base of every command; ``name`` is the API's ``/commands/{name}``."""

    name = "command"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteStart(StationCommand):
    name = "remote-start"
    id_tag: str
    evse_id: int | None = None
    charging_limit_w: float | None = None
    remote_start_id: int | None = None
    """OCPP 2.0.1 RequestStartTransaction.remoteStartId; lets the CSMS match the session it asked for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteStop(StationCommand):
    name = "remote-stop"
    transaction_id: str


class ProfilePurpose(StrEnum):
    """A charging profile's purpose, in OCPP 1.6 words (2.0.1 calls the station maximum
    ``ChargingStationMaxProfile``; ``ems.ocpp.translate`` renames it on the way out)."""

    TX_PROFILE = "TxProfile"
    TX_DEFAULT_PROFILE = "TxDefaultProfile"
    CHARGE_POINT_MAX_PROFILE = "ChargePointMaxProfile"


class RateUnit(StrEnum):
    """The unit of a charging schedule's limits: watts or amperes (per phase)."""

    W = "W"
    A = "A"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingSchedulePeriod:
    start_offset_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetChargingLimit(StationCommand):
    """A charging profile, version-neutral, with limits in ``rate_unit`` (W or A)."""

    name = "set-charging-profile"
    evse_id: int
    profile_id: int
    purpose: ProfilePurpose = ProfilePurpose.TX_PROFILE
    stack_level: int = 0
    rate_unit: RateUnit = RateUnit.W
    periods: tuple[ChargingSchedulePeriod, ...] = ()
    start_at: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearChargingLimit(StationCommand):
    """Remove charging profiles matching every given criterion (none given: all of them)."""

    name = "clear-charging-profile"
    profile_id: int | None = None
    evse_id: int | None = None
    purpose: ProfilePurpose | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCompositeSchedule(StationCommand):
    """Ask what limit an EVSE will actually apply for the next ``duration_s`` (0: the whole station)."""

    name = "get-composite-schedule"
    evse_id: int
    duration_s: int
    rate_unit: RateUnit | None = None


class Availability(StrEnum):
    OPERATIVE = "Operative"
    INOPERATIVE = "Inoperative"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAvailability(StationCommand):
    """``evse_id`` 0 or ``None``: the whole station."""

    name = "change-availability"
    availability: Availability
    evse_id: int | None = None


class ResetKind(StrEnum):
    SOFT = "Soft"
    HARD = "Hard"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset(StationCommand):
    """``SOFT`` is 2.0.1 ``OnIdle`` (after transactions end); ``HARD`` is ``Immediate``."""

    name = "reset"
    kind: ResetKind = ResetKind.SOFT


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlockConnector(StationCommand):
    name = "unlock-connector"
    evse_id: int
    connector_id: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerMessage(StationCommand):
    """``message``: the OCPP action to trigger, e.g. ``StatusNotification``, ``MeterValues``, ``Heartbeat``."""

    name = "trigger-message"
    message: str
    evse_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConfiguration(StationCommand):
    """OCPP 1.6 only. No keys: every key."""

    name = "get-configuration"
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeConfiguration(StationCommand):
    """OCPP 1.6 only."""

    name = "change-configuration"
    key: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableRef:
    """A device-model variable (OCPP 2.0.1): ``component`` / ``variable``, optional EVSE and instance."""

    component: str
    variable: str
    evse_id: int | None = None
    instance: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetVariables(StationCommand):
    """OCPP 2.0.1 only."""

    name = "get-variables"
    variables: tuple[VariableRef, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableValue:
    ref: VariableRef
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVariables(StationCommand):
    """OCPP 2.0.1 only."""

    name = "set-variables"
    values: tuple[VariableValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalListEntry:
    """One id tag of a local authorization list; ``status`` ``None`` removes it (differential update)."""

    id_tag: str
    status: str | None = "Accepted"
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendLocalList(StationCommand):
    name = "send-local-list"
    version: int
    full: bool = True
    """``True``: replace the list; ``False``: differential update."""
    entries: tuple[LocalListEntry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GetLocalListVersion(StationCommand):
    name = "get-local-list-version"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveNow(StationCommand):
    name = "reserve-now"
    reservation_id: int
    id_tag: str
    expires_at: datetime
    evse_id: int | None = None
    """``None`` or 0: any EVSE of the station."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReservation(StationCommand):
    name = "cancel-reservation"
    reservation_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateFirmware(StationCommand):
    name = "update-firmware"
    location: str
    retrieve_at: datetime
    request_id: int = 1
    retries: int | None = None
    retry_interval_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadDiagnostics(StationCommand):
    """GetDiagnostics (1.6) / GetLog with ``DiagnosticsLog`` (2.0.1): upload the station's logs to ``location``."""

    name = "get-diagnostics"
    location: str
    request_id: int = 1
    since: datetime | None = None
    until: datetime | None = None
    retries: int | None = None
    retry_interval_s: int | None = None


COMMANDS: dict[str, type[StationCommand]] = {
    cls.name: cls
    for cls in (
        RemoteStart,
        RemoteStop,
        SetChargingLimit,
        ClearChargingLimit,
        GetCompositeSchedule,
        ChangeAvailability,
        Reset,
        UnlockConnector,
        TriggerMessage,
        GetConfiguration,
        ChangeConfiguration,
        GetVariables,
        SetVariables,
        SendLocalList,
        GetLocalListVersion,
        ReserveNow,
        CancelReservation,
        UpdateFirmware,
        UploadDiagnostics,
    )
}
"""Every command by its API name (``POST /api/v1/stations/{id}/commands/{name}``)."""
