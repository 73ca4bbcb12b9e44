"""Stations, EVSEs and their live status, as the central system knows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OcppVersion(StrEnum):
    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"


class ConnectorStatus(StrEnum):
    """Union of OCPP 1.6 ChargePointStatus and OCPP 2.0.1 ConnectorStatusEnumType."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass(frozen=True, slots=True)
class Station:
    """A charging station registered with the central system."""

    id: str
    password_hash: str | None = None
    """Hash of the HTTP Basic password (security profile 1); ``None``: no password set."""
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    ocpp_version: OcppVersion | None = None
    site_id: str | None = None
    circuit_id: str | None = None
    registered_at: datetime | None = None
    last_seen_at: datetime | None = None
    online: bool = False


@dataclass(frozen=True, slots=True)
class ConnectorStatusRecord:
    """One entry of an EVSE/connector's status history."""

    station_id: str
    evse_id: int
    connector_id: int
    status: ConnectorStatus
    at: datetime
    error_code: str | None = None
    info: str | None = None
