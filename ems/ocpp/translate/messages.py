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
from enum import StrEnum

from ems.domain.card import AuthorizationStatus
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord
from ems.ocpp.translate.meter import meter_samples_v16, meter_samples_v201
from ems.ocpp.translate.status import connector_status, connector_status_v201, id_tag_info_v16, id_token_info_v201
from ems.ocpp.translate.wire import Payload, format_time, parse_time


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str | None
    model: str | None
    serial_number: str | None = None
    firmware_version: str | None = None


class TxKind(StrEnum):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


@dataclass(frozen=True, slots=True)
class TxUpdate:
    """One transaction message, version-neutral.

    ``transaction_id`` is ``None`` for meter values sent without one (they belong to the
    EVSE's open session). ``evse_id`` is ``None`` when the message does not say (1.6
    StopTransaction, later 2.0.1 events): the session knows. ``meter_wh`` is the register
    at start (STARTED) or stop (ENDED), in Wh. ``samples`` have no ``session_id`` yet.
    """

    kind: TxKind
    station_id: str
    at: datetime
    transaction_id: str | None
    evse_id: int | None
    connector_id: int = 1
    id_tag: str | None = None
    meter_wh: float | None = None
    reason: str | None = None
    samples: tuple[MeterSample, ...] = ()
    seq_no: int | None = None
    remote_start_id: int | None = None
    offline: bool = False


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """NotifyEVChargingNeeds (2.0.1), for the optimizer."""

    evse_id: int
    departure_at: datetime | None
    energy_requested_wh: float | None
    ev_max_power_w: float | None


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


def status_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> ConnectorStatusRecord:
    connector = int(p["connectorId"])
    error = p.get("errorCode")
    return ConnectorStatusRecord(
        station_id=station_id,
        evse_id=connector,
        connector_id=1 if connector > 0 else 0,
        status=connector_status(p["status"]),
        at=parse_time(p.get("timestamp"), received_at),
        error_code=None if error in (None, "NoError") else error,
        info=p.get("info"),
    )


def status_from_v201(p: Payload, *, station_id: str, received_at: datetime) -> ConnectorStatusRecord:
    return ConnectorStatusRecord(
        station_id=station_id,
        evse_id=int(p["evseId"]),
        connector_id=int(p["connectorId"]),
        status=connector_status(p["connectorStatus"]),
        at=parse_time(p.get("timestamp"), received_at),
    )


def start_from_v16(p: Payload, *, station_id: str, transaction_id: int, received_at: datetime) -> TxUpdate:
    """StartTransaction; ``transaction_id`` is the one the CSMS assigns. ``meterStart`` is Wh (spec)."""
    connector = int(p["connectorId"])
    return TxUpdate(
        kind=TxKind.STARTED,
        station_id=station_id,
        at=parse_time(p.get("timestamp"), received_at),
        transaction_id=str(transaction_id),
        evse_id=connector,
        id_tag=p.get("idTag"),
        meter_wh=float(p["meterStart"]),
    )


def stop_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    tx = str(p["transactionId"])
    at = parse_time(p.get("timestamp"), received_at)
    samples = meter_samples_v16(
        p.get("transactionData") or (),
        station_id=station_id,
        evse_id=0,
        session_id=None,
        received_at=at,
    )
    return TxUpdate(
        kind=TxKind.ENDED,
        station_id=station_id,
        at=at,
        transaction_id=tx,
        evse_id=None,
        id_tag=p.get("idTag"),
        meter_wh=float(p["meterStop"]),
        reason=p.get("reason", "Local"),
        samples=tuple(samples),
    )


def meter_values_from_v16(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    connector = int(p["connectorId"])
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
    evse = int(p["evseId"])
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
        whole = s.measurand is Measurand.ENERGY_IMPORT_REGISTER and s.phase is None and s.flag is None
        if whole and (context is None or s.context is context):
            return s.value
    return None


def transaction_event_from_v201(p: Payload, *, station_id: str, received_at: datetime) -> TxUpdate:
    """TransactionEvent. The start/stop register comes from the Transaction.Begin/End sample, if sent."""
    kind = TxKind(p["eventType"])
    info = p["transactionInfo"]
    evse = p.get("evse") or {}
    evse_id = evse.get("id")
    at = parse_time(p.get("timestamp"), received_at)
    samples = meter_samples_v201(
        p.get("meterValue") or (),
        station_id=station_id,
        evse_id=int(evse_id) if evse_id is not None else 0,
        session_id=None,
        received_at=at,
    )
    meter = None
    if kind is TxKind.STARTED:
        meter = _register_in(samples, ReadingContext.TRANSACTION_BEGIN) or _register_in(samples, None)
    elif kind is TxKind.ENDED:
        meter = _register_in(samples, ReadingContext.TRANSACTION_END) or _register_in(samples, None)
    token = p.get("idToken") or {}
    return TxUpdate(
        kind=kind,
        station_id=station_id,
        at=at,
        transaction_id=str(info["transactionId"]),
        evse_id=None if evse_id is None else int(evse_id),
        connector_id=int(evse.get("connectorId", 1)),
        id_tag=token.get("idToken"),
        meter_wh=meter,
        reason=info.get("stoppedReason", "Local") if kind is TxKind.ENDED else None,
        samples=tuple(samples),
        seq_no=p.get("seqNo"),
        remote_start_id=info.get("remoteStartId"),
        offline=bool(p.get("offline", False)),
    )


def charging_needs_from_v201(p: Payload, *, received_at: datetime) -> ChargingNeeds:
    needs = p.get("chargingNeeds", {})
    ac = needs.get("acChargingParameters") or {}
    dc = needs.get("dcChargingParameters") or {}
    departure = needs.get("departureTime")
    energy = ac.get("energyAmount", dc.get("energyAmount"))
    power = dc.get("evMaxPower")
    if power is None and ac:
        # AC: per-phase current x voltage; evMaxVoltage is line-to-line on three phases, so use min current x voltage
        power = float(ac.get("evMaxCurrent", 0)) * float(ac.get("evMaxVoltage", 0)) or None
    return ChargingNeeds(
        evse_id=int(p["evseId"]),
        departure_at=parse_time(departure, received_at) if departure else None,
        energy_requested_wh=None if energy is None else float(energy),
        ev_max_power_w=None if power is None else float(power),
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
