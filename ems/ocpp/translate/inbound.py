"""One journaled station message -> what it means for the domain, for either version (pure).

The applier calls ``interpret`` on every record it takes from the journal, so the
version-specific knowledge stays in ``translate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ems.domain.station import ConnectorStatusRecord, OcppVersion
from ems.ocpp.translate import messages as m
from ems.ocpp.translate.wire import Payload


@dataclass(frozen=True, slots=True)
class Booted:
    info: m.BootInfo


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


Meaning = m.TxUpdate | ConnectorStatusRecord | Booted | m.ChargingNeeds | Ignored


def _start16(p: Payload, r: Payload, sid: str, at: datetime) -> Meaning:
    return m.start_from_v16(p, station_id=sid, transaction_id=int(r["transactionId"]), received_at=at)


_V16: dict[str, Callable[[Payload, Payload, str, datetime], Meaning]] = {
    "BootNotification": lambda p, r, sid, at: Booted(m.boot_from_v16(p)),
    "StatusNotification": lambda p, r, sid, at: m.status_from_v16(p, station_id=sid, received_at=at),
    "StartTransaction": _start16,
    "StopTransaction": lambda p, r, sid, at: m.stop_from_v16(p, station_id=sid, received_at=at),
    "MeterValues": lambda p, r, sid, at: m.meter_values_from_v16(p, station_id=sid, received_at=at),
}

_V201: dict[str, Callable[[Payload, Payload, str, datetime], Meaning]] = {
    "BootNotification": lambda p, r, sid, at: Booted(m.boot_from_v201(p)),
    "StatusNotification": lambda p, r, sid, at: m.status_from_v201(p, station_id=sid, received_at=at),
    "TransactionEvent": lambda p, r, sid, at: m.transaction_event_from_v201(p, station_id=sid, received_at=at),
    "MeterValues": lambda p, r, sid, at: m.meter_values_from_v201(p, station_id=sid, received_at=at),
    "NotifyEVChargingNeeds": lambda p, r, sid, at: m.charging_needs_from_v201(p, received_at=at),
}

JOURNALED: dict[OcppVersion, frozenset[str]] = {OcppVersion.V16: frozenset(_V16), OcppVersion.V201: frozenset(_V201)}
"""The actions that change state and go through the journal, per version."""


def interpret(
    version: OcppVersion, action: str, payload: Payload, response: Payload, *, station_id: str, received_at: datetime
) -> Meaning:
    """What a schema-valid message means. Data the schema allows but we cannot use becomes ``Ignored``."""
    table = _V16 if version is OcppVersion.V16 else _V201
    handler = table.get(action)
    if handler is None:
        return Ignored(f"{action} changes nothing here")
    try:
        return handler(payload, response, station_id, received_at)
    except (KeyError, ValueError, TypeError) as error:
        return Ignored(f"{action}: unusable data ({error!r})")
