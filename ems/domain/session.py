"""Charging sessions (OCPP transactions) and meter samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"


class Measurand(StrEnum):
    """The OCPP measurands ems uses (same names in 1.6 and 2.0.1)."""

    ENERGY_IMPORT_REGISTER = "Energy.Active.Import.Register"
    ENERGY_IMPORT_INTERVAL = "Energy.Active.Import.Interval"
    POWER_IMPORT = "Power.Active.Import"
    POWER_OFFERED = "Power.Offered"
    CURRENT_IMPORT = "Current.Import"
    CURRENT_OFFERED = "Current.Offered"
    VOLTAGE = "Voltage"
    SOC = "SoC"
    TEMPERATURE = "Temperature"
    FREQUENCY = "Frequency"
    OTHER = "Other"


class ReadingContext(StrEnum):
    SAMPLE_PERIODIC = "Sample.Periodic"
    SAMPLE_CLOCK = "Sample.Clock"
    TRANSACTION_BEGIN = "Transaction.Begin"
    TRANSACTION_END = "Transaction.End"
    INTERRUPTION_BEGIN = "Interruption.Begin"
    INTERRUPTION_END = "Interruption.End"
    TRIGGER = "Trigger"
    OTHER = "Other"


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One normalized meter reading.

    ``value`` is in the measurand's base unit (Wh, W, A, V, %, Celsius, Hz) whatever unit
    the station sent; ``raw_value``/``raw_unit`` keep what it sent, for audit.
    ``phase`` is ``None`` for a total over all phases.
    ``flag`` marks a suspicious reading (e.g. ``"register_backwards"``) that is stored
    but not trusted for billing.
    """

    station_id: str
    evse_id: int
    measured_at: datetime
    measurand: Measurand
    value: float
    session_id: str | None = None
    phase: str | None = None
    context: ReadingContext = ReadingContext.SAMPLE_PERIODIC
    raw_value: str | None = None
    raw_unit: str | None = None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """A charging session: OCPP 1.6 transaction or OCPP 2.0.1 transaction.

    ``id`` is the central system's session id. ``transaction_id`` is what the station
    knows it by: the integer the CSMS assigned (1.6) or the station's string id (2.0.1).
    Meter readings are the lifetime register in Wh at start and stop.
    """

    id: str
    station_id: str
    evse_id: int
    connector_id: int
    transaction_id: str
    started_at: datetime
    id_tag: str | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float = 0.0
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    status: SessionStatus = SessionStatus.ACTIVE
    departure_at: datetime | None = None
    """When the driver expects to leave (ISO 15118 / NotifyEVChargingNeeds / app)."""
    energy_requested_wh: float | None = None
    ev_max_power_w: float | None = None
    last_power_w: float | None = None
    updated_at: datetime | None = None
