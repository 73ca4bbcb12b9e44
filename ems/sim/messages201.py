"""What a simulated OCPP 2.0.1 station sends: the ``ocpp`` library's typed ``ocpp.v201.call`` messages.

Built from the station's state with the library's datatypes and enums, never from the server's
``ems.ocpp.translate`` (see ``ems.sim.wire``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v201 import call
from ocpp.v201.datatypes import (
    ChargingStationType,
    EVSEType,
    IdTokenType,
    MeterValueType,
    SampledValueType,
    TransactionType,
)
from ocpp.v201.enums import (
    BootReasonEnumType,
    ChargingStateEnumType,
    ConnectorStatusEnumType,
    IdTokenEnumType,
    MeasurandEnumType,
    ReadingContextEnumType,
    ReasonEnumType,
    TransactionEventEnumType,
    TriggerReasonEnumType,
)

from ems.domain import session as s
from ems.domain.card import AuthorizationStatus
from ems.domain.station import ConnectorStatus
from ems.sim.messages16 import known
from ems.sim.wire import format_time

_OCCUPIED = frozenset(
    {
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)
"""2.0.1 folds 1.6's charging states into ``Occupied``."""


def boot(model: str, vendor: str) -> call.BootNotification:
    return call.BootNotification(
        charging_station=ChargingStationType(model=model, vendor_name=vendor), reason=BootReasonEnumType.power_up
    )


def heartbeat() -> call.Heartbeat:
    return call.Heartbeat()


def authorize(id_tag: str) -> call.Authorize:
    return call.Authorize(id_token=_token(id_tag))


def authorization(response: Any) -> tuple[str, AuthorizationStatus]:
    """The CSMS's word for an Authorize answer, and what it means (unknown words: INVALID)."""
    word = str(response.id_token_info["status"])
    try:
        return word, AuthorizationStatus(word)
    except ValueError:
        return word, AuthorizationStatus.INVALID


def status(evse_id: int, connector_id: int, value: ConnectorStatus, at: datetime) -> call.StatusNotification:
    word = ConnectorStatusEnumType.occupied if value in _OCCUPIED else known(ConnectorStatusEnumType, value.value)
    return call.StatusNotification(
        timestamp=format_time(at), connector_status=word, evse_id=evse_id, connector_id=connector_id
    )


def transaction_event(
    event: TransactionEventEnumType,
    *,
    at: datetime,
    trigger: str,
    seq_no: int,
    transaction_id: str,
    evse_id: int,
    connector_id: int = 1,
    charging_state: str | None = None,
    id_tag: str | None = None,
    samples: Sequence[s.MeterSample] = (),
    remote_start_id: int | None = None,
    stopped_reason: str | None = None,
    offline: bool = False,
) -> call.TransactionEvent:
    """The TransactionEvent a station sends: ``event`` Started, Updated or Ended."""
    return call.TransactionEvent(
        event_type=event,
        timestamp=format_time(at),
        trigger_reason=known(TriggerReasonEnumType, trigger),
        seq_no=seq_no,
        transaction_info=TransactionType(
            transaction_id=transaction_id,
            charging_state=None if charging_state is None else known(ChargingStateEnumType, charging_state),
            stopped_reason=(
                known(ReasonEnumType, stopped_reason)
                if stopped_reason and event is TransactionEventEnumType.ended
                else None
            ),
            remote_start_id=remote_start_id,
        ),
        meter_value=meter_value_list(samples) or None,
        offline=True if offline else None,
        evse=EVSEType(id=evse_id, connector_id=connector_id),
        id_token=None if id_tag is None else _token(id_tag),
    )


def meter_values(evse_id: int, samples: Sequence[s.MeterSample]) -> call.MeterValues:
    return call.MeterValues(evse_id=evse_id, meter_value=meter_value_list(samples))


def meter_value_list(samples: Sequence[s.MeterSample]) -> list[MeterValueType]:
    """One ``MeterValueType`` per instant, its sampled values in the order given."""
    groups: dict[datetime, list[s.MeterSample]] = {}
    for sample in samples:
        groups.setdefault(sample.measured_at, []).append(sample)
    return [
        MeterValueType(timestamp=format_time(at), sampled_value=[_sampled(x) for x in group])
        for at, group in sorted(groups.items())
    ]


def _sampled(sample: s.MeterSample) -> SampledValueType:
    return SampledValueType(
        value=sample.value,
        context=known(ReadingContextEnumType, sample.context.value),
        measurand=known(MeasurandEnumType, sample.measurand.value),
        phase=sample.phase,
    )


def _token(id_tag: str) -> IdTokenType:
    return IdTokenType(id_token=id_tag, type=IdTokenEnumType.iso14443)
