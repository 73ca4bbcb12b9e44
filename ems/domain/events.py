"""Domain events: something happened. Immutable, typed, serializable.

Published on the in-process bus (``ems.bus``); storage, billing and the
controller subscribe. Every event carries ``at``, the UTC time it happened (the
station's timestamp where the station gave one, else the time it was received).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ems.domain.capacity import CapacityChangeReason, CapacitySignal, LimitSource
from ems.domain.session import MeterSample
from ems.domain.station import ConnectorStatus, OcppVersion
from ems.domain.units import Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StationConnected(DomainEvent):
    station_id: str
    ocpp_version: OcppVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class StationDisconnected(DomainEvent):
    station_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StationBooted(DomainEvent):
    station_id: str
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(DomainEvent):
    station_id: str
    evse_id: int
    connector_id: int
    status: ConnectorStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(DomainEvent):
    session_id: str
    station_id: str
    evse_id: int
    id_tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated(DomainEvent):
    """Departure time, energy request or EV limits learned during a session."""

    session_id: str
    station_id: str
    evse_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSampled(DomainEvent):
    station_id: str
    evse_id: int
    samples: tuple[MeterSample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(DomainEvent):
    session_id: str
    station_id: str
    evse_id: int
    energy_wh: float
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySignalReceived(DomainEvent):
    signal: CapacitySignal


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityChanged(DomainEvent):
    """The capacity in force for a site (or circuit) or its timeline changed, and why.

    Published on every accepted signal (its timeline changed even when the value in force
    now did not) and whenever the value in force moves on its own: a block starts or
    expires, the signal goes stale, signals resume. ``capacity_w`` and ``phase_limits_a``
    are what is in force at ``at``.
    """

    site_id: str
    circuit_id: str | None
    capacity_w: float | None
    reason: CapacityChangeReason
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)
    source: LimitSource | None = None
    stale: bool = False
    previous_capacity_w: float | None = None
    message_id: str | None = None
    """The signal that caused the change, when one did."""
