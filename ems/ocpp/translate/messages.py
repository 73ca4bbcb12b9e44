"""Station messages <-> version-neutral records, both directions, both versions.

Inbound (``*_from_v16`` / ``*_from_v201``) is what the central system uses; outbound
(``*_v16`` / ``*_v201`` builders of station-side payloads) is what the simulator sends,
and what the round-trip tests check the inbound side against. Pure: times come in.

Connector numbering: an OCPP 1.6 connector N is EVSE N with connector 1 (1.6 has one
connector per "connector"); connector 0 is the whole station.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ems.domain.card import AuthorizationStatus
from ems.domain.register import is_register
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord
from ems.domain.transaction import ChargingNeeds as ChargingNeeds
from ems.domain.transaction import TxKind as TxKind
from ems.domain.transaction import TxUpdate as TxUpdate
from ems.ocpp.translate.edge import (
    MAX_POWER_W,
    MAX_REGISTER_WH,
    evse_number,
    future_time,
    number,
    register_or_none,
    station_time,
)
from ems.ocpp.translate.meter import meter_samples_v16, meter_samples_v201
from ems.ocpp.translate.status import connector_status, connector_status_v201, id_tag_info_v16, id_token_info_v201
from ems.ocpp.translate.wire import Payload, format_time


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str | None
    model: str | None
    serial_number: str | None = None
    firmware_version: str | None = None


# ------------------------------------------------------------------ inbound (station -> CSMS)


def boot_from_v16(p: Payload) -> BootInfo:
    return BootInfo(
        vendor=p.get("chargePointVendor"),
        model=p.get("chargePointModel"),
        serial_number=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
        firmware_version=p.get("firmwareVersion"),
    )


def boot_from_v201(p: Payload) -> BootInfo:
    cs = p.get("chargingStation", {})
    return BootInfo(
        vendor=cs.get("vendorName"),
        model=cs.get("model"),
        serial_number=cs.get("serialNumber"),
        firmware_version=cs.get("firmwareVersion"),
    )


def _accepted(info: object) -> bool | None:
    """Whether our recorded answer (``idTagInfo`` / ``idTokenInfo``) accepted the id token."""
    return info.get("status") == "Accepted" if isinstance(info, dict) else None


def status_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> ConnectorStatusRecord:
    connector = evse_number(p["connectorId"], "connectorId")
    error = p.get("errorCode")
    return ConnectorStatusRecord(
        station_id=station_id,
        evse_id=connector,
        connector_id=1 if connector > 0 else 0,
        status=connector_status(p["status"]),
        at=station_time(p.get("timestamp"), received_at).at,
        error_code=None if error in (None, "NoError") else error,
        info=p.get("info"),
    )


def status_from_v201(p: Payload, *, station_id: str, received_at: datetime) -> ConnectorStatusRecord:
    return ConnectorStatusRecord(
        station_id=station_id,
        evse_id=evse_number(p["evseId"]),
        connector_id=evse_number(p["connectorId"], "connectorId"),
        status=connector_status(p["connectorStatus"]),
        at=station_time(p.get("timestamp"), received_at).at,
    )


def start_from_v16(
    p: Payload, *, station_id: str, transaction_id: int, received_at: datetime, answer: Payload | None = None
) -> TxUpdate:
    """StartTransaction; ``transaction_id`` is the one the CSMS assigns. ``meterStart`` is Wh (spec)."""
    return TxUpdate(
        kind=TxKind.STARTED,
        station_id=station_id,
        at=station_time(p.get("timestamp"), received_at).at,
        transaction_id=str(transaction_id),
        evse_id=evse_number(p["connectorId"], "connectorId"),
        id_tag=p.get("idTag"),
        meter_wh=register_or_none(p["meterStart"]),
        authorized=None if answer is None else _accepted(answer.get("idTagInfo")),
    )


def stop_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    tx = str(p["transactionId"])
    at = station_time(p.get("timestamp"), received_at).at
    samples = meter_samples_v16(
        p.get("transactionData") or (),
        station_id=station_id,
        evse_id=0,
        session_id=None,
        received_at=received_at,
    )
    return TxUpdate(
        kind=TxKind.ENDED,
        station_id=station_id,
        at=at,
        transaction_id=tx,
        evse_id=None,
        id_tag=p.get("idTag"),
        meter_wh=register_or_none(p["meterStop"]),
        reason=p.get("reason", "Local"),
        samples=tuple(samples),
    )


def meter_values_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    connector = evse_number(p["connectorId"], "connectorId")
    samples = meter_samples_v16(
        p.get("meterValue") or (), station_id=station_id, evse_id=connector, session_id=None, received_at=received_at
    )
    tx = p.get("transactionId")
    return TxUpdate(
        kind=TxKind.UPDATED,
        station_id=station_id,
        at=max((s.measured_at for s in samples), default=received_at),
        transaction_id=None if tx is None else str(tx),
        evse_id=connector,
        samples=tuple(samples),
    )


def meter_values_from_v201(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    evse = evse_number(p["evseId"])
    samples = meter_samples_v201(
        p.get("meterValue") or (), station_id=station_id, evse_id=evse, session_id=None, received_at=received_at
    )
    return TxUpdate(
        kind=TxKind.UPDATED,
        station_id=station_id,
        at=max((s.measured_at for s in samples), default=received_at),
        transaction_id=None,
        evse_id=evse,
        samples=tuple(samples),
    )


def _register_in(samples: Sequence[MeterSample], context: ReadingContext | None) -> float | None:
    for s in samples:
        if is_register(s) and (context is None or s.context is context):
            return s.value
    return None


def transaction_event_from_v201(
    p: Payload, *, station_id: str, received_at: datetime, answer: Payload | None = None
) -> TxUpdate:
    """TransactionEvent. The start/stop register comes from the Transaction.Begin/End sample, if sent."""
    kind = TxKind(p["eventType"])
    info = p["transactionInfo"]
    evse = p.get("evse") or {}
    evse_id = None if evse.get("id") is None else evse_number(evse["id"])
    connector_id = evse_number(evse.get("connectorId", 1), "connectorId")
    at = station_time(p.get("timestamp"), received_at).at
    samples = meter_samples_v201(
        p.get("meterValue") or (),
        station_id=station_id,
        evse_id=evse_id if evse_id is not None else 0,
        session_id=None,
        received_at=received_at,
    )
    meter = None
    if kind is TxKind.STARTED:
        meter = _register_in(samples, ReadingContext.TRANSACTION_BEGIN) or _register_in(samples, None)
    elif kind is TxKind.ENDED:
        meter = _register_in(samples, ReadingContext.TRANSACTION_END) or _register_in(samples, None)
    token = p.get("idToken") or {}
    id_tag = token.get("idToken")
    return TxUpdate(
        kind=kind,
        station_id=station_id,
        at=at,
        transaction_id=str(info["transactionId"]),
        evse_id=evse_id,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_wh=meter,
        reason=info.get("stoppedReason", "Local") if kind is TxKind.ENDED else None,
        samples=tuple(samples),
        seq_no=p.get("seqNo"),
        remote_start_id=info.get("remoteStartId"),
        offline=bool(p.get("offline", False)),
        authorized=None if answer is None or id_tag is None else _accepted(answer.get("idTokenInfo")),
    )


def charging_needs_from_v201(p: Payload, *, received_at: datetime) -> ChargingNeeds:
    needs = p.get("chargingNeeds", {})
    ac = needs.get("acChargingParameters") or {}
    dc = needs.get("dcChargingParameters") or {}
    departure = needs.get("departureTime")
    energy = number(ac.get("energyAmount", dc.get("energyAmount")))
    power = number(dc.get("evMaxPower"))
    if power is None and ac:
        # AC: per-phase current x voltage; evMaxVoltage is line-to-line on three phases, so use min current x voltage
        power = number((number(ac.get("evMaxCurrent", 0)) or 0.0) * (number(ac.get("evMaxVoltage", 0)) or 0.0)) or None
    return ChargingNeeds(
        evse_id=evse_number(p["evseId"]),
        departure_at=future_time(departure, received_at),
        energy_requested_wh=energy if energy is not None and 0 <= energy <= MAX_REGISTER_WH else None,
        ev_max_power_w=power if power is not None and 0 < power <= MAX_POWER_W else None,
    )


# ------------------------------------------------------------------ CSMS answers


def boot_response(now: datetime, *, interval_s: int, accepted: bool = True) -> Payload:
    """Same shape in 1.6 and 2.0.1."""
    return {"status": "Accepted" if accepted else "Rejected", "currentTime": format_time(now), "interval": interval_s}


def heartbeat_response(now: datetime) -> Payload:
    return {"currentTime": format_time(now)}


def start_response_v16(transaction_id: int, status: AuthorizationStatus, expires_at: datetime | None = None) -> Payload:
    return {"transactionId": transaction_id, "idTagInfo": id_tag_info_v16(status, expires_at)}


def stop_response_v16(id_tag: str | None, status: AuthorizationStatus = AuthorizationStatus.ACCEPTED) -> Payload:
    """Always the same answer for the same stop: a duplicate must get the same answer."""
    return {} if id_tag is None else {"idTagInfo": id_tag_info_v16(status)}


def transaction_event_response(id_tag: str | None, status: AuthorizationStatus | None) -> Payload:
    return {} if id_tag is None or status is None else {"idTokenInfo": id_token_info_v201(status)}


# ------------------------------------------------------------------ outbound (station side, for the simulator)


def _sampled_v16(s: MeterSample) -> Payload:
    unit = {
        Measurand.ENERGY_IMPORT_REGISTER: "Wh",
        Measurand.POWER_IMPORT: "W",
        Measurand.CURRENT_IMPORT: "A",
        Measurand.VOLTAGE: "V",
        Measurand.SOC: "Percent",
    }.get(s.measurand)
    out: Payload = {"value": f"{s.value:.3f}".rstrip("0").rstrip("."), "measurand": s.measurand.value}
    out["context"] = s.context.value
    if unit:
        out["unit"] = unit
    if s.phase:
        out["phase"] = s.phase
    return out


def _sampled_v201(s: MeterSample) -> Payload:
    out: Payload = {"value": s.value, "measurand": s.measurand.value, "context": s.context.value}
    if s.phase:
        out["phase"] = s.phase
    return out


def _group(samples: Sequence[MeterSample]) -> list[tuple[datetime, list[MeterSample]]]:
    groups: dict[datetime, list[MeterSample]] = {}
    for s in samples:
        groups.setdefault(s.measured_at, []).append(s)
    return sorted(groups.items())


def meter_value_list_v16(samples: Sequence[MeterSample]) -> list[Payload]:
    return [{"timestamp": format_time(t), "sampledValue": [_sampled_v16(s) for s in g]} for t, g in _group(samples)]


def meter_value_list_v201(samples: Sequence[MeterSample]) -> list[Payload]:
    return [{"timestamp": format_time(t), "sampledValue": [_sampled_v201(s) for s in g]} for t, g in _group(samples)]


def status_notification_v16(evse_id: int, status: ConnectorStatus, at: datetime) -> Payload:
    return {"connectorId": evse_id, "errorCode": "NoError", "status": status.value, "timestamp": format_time(at)}


def status_notification_v201(evse_id: int, connector_id: int, status: ConnectorStatus, at: datetime) -> Payload:
    return {
        "timestamp": format_time(at),
        "connectorStatus": connector_status_v201(status),
        "evseId": evse_id,
        "connectorId": connector_id,
    }


def transaction_event_v201(
    update: TxUpdate, *, trigger_reason: str, seq_no: int, charging_state: str | None = None
) -> Payload:
    """The 2.0.1 TransactionEvent a station would send for ``update``."""
    if update.transaction_id is None:
        raise ValueError("a TransactionEvent needs a transaction id")
    info: Payload = {"transactionId": update.transaction_id}
    if charging_state:
        info["chargingState"] = charging_state
    if update.kind is TxKind.ENDED and update.reason:
        info["stoppedReason"] = update.reason
    if update.remote_start_id is not None:
        info["remoteStartId"] = update.remote_start_id
    out: Payload = {
        "eventType": update.kind.value,
        "timestamp": format_time(update.at),
        "triggerReason": trigger_reason,
        "seqNo": seq_no,
        "transactionInfo": info,
    }
    if update.offline:
        out["offline"] = True
    if update.evse_id is not None:
        out["evse"] = {"id": update.evse_id, "connectorId": update.connector_id}
    if update.id_tag is not None:
        out["idToken"] = {"idToken": update.id_tag, "type": "ISO14443"}
    if update.samples:
        out["meterValue"] = meter_value_list_v201(update.samples)
    return out
