"""What a simulated OCPP 1.6J station sends: the ``ocpp`` library's typed ``ocpp.v16.call`` messages.

Built from the station's state with the library's datatypes and enums, never from the server's
``ems.ocpp.translate`` (see ``ems.sim.wire``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from ocpp.v16 import call
from ocpp.v16.datatypes import MeterValue, SampledValue
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Measurand, ReadingContext, Reason, UnitOfMeasure

from ems.domain import session as s
from ems.domain.card import AuthorizationStatus
from ems.domain.station import ConnectorStatus
from ems.sim.wire import format_time

_UNIT = {
    s.Measurand.ENERGY_IMPORT_REGISTER: UnitOfMeasure.wh,
    s.Measurand.POWER_IMPORT: UnitOfMeasure.w,
    s.Measurand.CURRENT_IMPORT: UnitOfMeasure.a,
    s.Measurand.VOLTAGE: UnitOfMeasure.v,
    s.Measurand.SOC: UnitOfMeasure.percent,
}


def boot(model: str, vendor: str) -> call.BootNotification:
    return call.BootNotification(charge_point_model=model, charge_point_vendor=vendor)


def heartbeat() -> call.Heartbeat:
    return call.Heartbeat()


def authorize(id_tag: str) -> call.Authorize:
    return call.Authorize(id_tag=id_tag)


def authorization(response: Any) -> tuple[str, AuthorizationStatus]:
    """The CSMS's word for an Authorize answer, and what it means (unknown words: INVALID)."""
    word = str(response.id_tag_info["status"])
    return word, _status(word)


def status(evse_id: int, value: ConnectorStatus, at: datetime) -> call.StatusNotification:
    return call.StatusNotification(
        connector_id=evse_id,
        error_code=ChargePointErrorCode.no_error,
        status=known(ChargePointStatus, value.value),
        timestamp=format_time(at),
    )


def start_transaction(evse_id: int, id_tag: str, meter_start_wh: int, at: datetime) -> call.StartTransaction:
    return call.StartTransaction(
        connector_id=evse_id, id_tag=id_tag, meter_start=meter_start_wh, timestamp=format_time(at)
    )


def start_accepted(response: Any) -> bool:
    return bool(response.id_tag_info["status"] == "Accepted")


def meter_values(evse_id: int, samples: Sequence[s.MeterSample], transaction_id: int | None) -> call.MeterValues:
    return call.MeterValues(connector_id=evse_id, meter_value=meter_value_list(samples), transaction_id=transaction_id)


def stop_transaction(
    *,
    meter_stop_wh: int,
    at: datetime,
    transaction_id: int,
    reason: str,
    id_tag: str | None,
    samples: Sequence[s.MeterSample],
) -> call.StopTransaction:
    return call.StopTransaction(
        meter_stop=meter_stop_wh,
        timestamp=format_time(at),
        transaction_id=transaction_id,
        reason=known(Reason, reason),
        id_tag=id_tag,
        transaction_data=meter_value_list(samples),
    )


def meter_value_list(samples: Sequence[s.MeterSample]) -> list[MeterValue]:
    """One ``MeterValue`` per instant, its sampled values in the order given."""
    groups: dict[datetime, list[s.MeterSample]] = {}
    for sample in samples:
        groups.setdefault(sample.measured_at, []).append(sample)
    return [
        MeterValue(timestamp=format_time(at), sampled_value=[_sampled(x) for x in group])
        for at, group in sorted(groups.items())
    ]


def _sampled(sample: s.MeterSample) -> SampledValue:
    return SampledValue(
        value=f"{sample.value:.3f}".rstrip("0").rstrip("."),  # 1.6 sends decimals as strings
        context=known(ReadingContext, sample.context.value),
        measurand=known(Measurand, sample.measurand.value),
        phase=sample.phase,
        unit=_UNIT.get(sample.measurand),
    )


E = TypeVar("E", bound=StrEnum)


def known(enum: type[E], word: str) -> E | str:
    """The library's enum member for ``word``; a word it does not know (a test's deliberately bad
    value, a vendor extension) goes out as it is, for the CSMS to judge."""
    try:
        return enum(word)
    except ValueError:
        return word


def _status(word: str) -> AuthorizationStatus:
    try:
        return AuthorizationStatus(word)
    except ValueError:
        return AuthorizationStatus.INVALID
