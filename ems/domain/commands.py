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


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingSchedulePeriod:
    start_offset_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetChargingLimit(StationCommand):
    """A charging profile, version-neutral. ``rate_unit`` is ``"W"`` or ``"A"``."""

    name = "set-charging-profile"
    evse_id: int
    profile_id: int
    purpose: str = "TxProfile"
    """TxProfile, TxDefaultProfile or ChargePointMaxProfile (ChargingStationMaxProfile in 2.0.1)."""
    stack_level: int = 0
    rate_unit: str = "W"
    periods: tuple[ChargingSchedulePeriod, ...] = ()
    start_at: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None
