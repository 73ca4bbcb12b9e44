"""One journaled station message -> what it means for the domain, for either version (pure).

The applier calls ``interpret`` on every record it takes from the journal, so the
version-specific knowledge stays in ``translate``. Every payload goes through the edge
checks (``edge``) on the way: text cleaned, times checked against the receive time, numbers
bounded after scaling, EVSE numbers bounded. What a station may send but ems cannot apply
is ``Rejected`` with the reason (the applier quarantines it); what changes nothing is
``Ignored``. No station data makes ``interpret`` raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ems.domain.station import ConnectorStatusRecord, OcppVersion
from ems.ocpp.translate import messages as m
from ems.ocpp.translate.edge import Unusable, clean_payload
from ems.ocpp.translate.wire import Payload


@dataclass(frozen=True, slots=True)
class Booted:
    info: m.BootInfo


@dataclass(frozen=True, slots=True)
class Ignored:
    """Changes nothing here (an action that is only logged)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Schema-valid but unusable: quarantined with ``reason``."""

    reason: str


Meaning = m.TxUpdate | ConnectorStatusRecord | Booted | m.ChargingNeeds | Ignored | Rejected


def _start16(p: Payload, r: Payload, sid: str, at: datetime) -> Meaning:
    return m.start_from_v16(p, station_id=sid, transaction_id=int(r["transactionId"]), received_at=at, answer=r)


def _event201(p: Payload, r: Payload, sid: str, at: datetime) -> Meaning:
    return m.transaction_event_from_v201(p, station_id=sid, received_at=at, answer=r)


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
    "TransactionEvent": _event201,
    "MeterValues": lambda p, r, sid, at: m.meter_values_from_v201(p, station_id=sid, received_at=at),
    "NotifyEVChargingNeeds": lambda p, r, sid, at: m.charging_needs_from_v201(p, received_at=at),
}

JOURNALED: dict[OcppVersion, frozenset[str]] = {OcppVersion.V16: frozenset(_V16), OcppVersion.V201: frozenset(_V201)}
"""The actions that change state and go through the journal, per version."""


def interpret(
    version: OcppVersion, action: str, payload: Payload, response: Payload, *, station_id: str, received_at: datetime
) -> Meaning:
    """What a schema-valid message means. Data the schema allows but ems cannot use is ``Rejected``."""
    table = _V16 if version is OcppVersion.V16 else _V201
    handler = table.get(action)
    if handler is None:
        return Ignored(f"{action} changes nothing here")
    try:
        return handler(clean_payload(payload), response, station_id, received_at)
    except Unusable as error:
        return Rejected(f"{action}: {error}")
    except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError) as error:
        # The schema was checked before the answer; this is data it allows that ems cannot use.
        return Rejected(f"{action}: unusable data ({type(error).__name__}: {str(error)[:200]})")
