"""The pure vocabulary of ems: no I/O, no clock, no framework imports."""

from ems.domain.capacity import CapacityBlock, CapacitySignal, CapacityUnit, SignalKind, SignalSource
from ems.domain.card import AuthorizationStatus, Card, CardMode, CardStatus, authorize_card
from ems.domain.money import Money
from ems.domain.session import ChargingSession, Measurand, MeterSample, ReadingContext, SessionStatus
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, default_site
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, OcppVersion, Station
from ems.domain.units import Phase

__all__ = [
    "AuthorizationStatus",
    "CapacityBlock",
    "CapacitySignal",
    "CapacityUnit",
    "Card",
    "CardMode",
    "CardStatus",
    "ChargingSession",
    "Circuit",
    "ConnectorStatus",
    "ConnectorStatusRecord",
    "EvseSpec",
    "Measurand",
    "MeterSample",
    "Money",
    "OcppVersion",
    "Phase",
    "ReadingContext",
    "SessionStatus",
    "SignalKind",
    "SignalSource",
    "Site",
    "Station",
    "StationSpec",
    "authorize_card",
    "default_site",
]
