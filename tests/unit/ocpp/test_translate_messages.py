"""Station messages, both versions: inbound parsing and the outbound builders round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from ocpp.messages import Call, _validate_payload

from ems.domain.card import AuthorizationStatus
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus
from ems.ocpp import translate as t

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_boot_both_versions() -> None:
    b16 = t.boot_from_v16({"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1.2"})
    b201 = t.boot_from_v201(
        {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M", "firmwareVersion": "1.2"}}
    )
    assert b16 == b201 == t.BootInfo(vendor="V", model="M", firmware_version="1.2")
    response = t.boot_response(T0, interval_s=300)
    _validate_payload(_result("BootNotification", response), "1.6")
    _validate_payload(_result("BootNotification", response), "2.0.1")


def _result(action: str, payload: dict[str, object]) -> object:
    from ocpp.messages import CallResult

    return CallResult("1", payload, action=action)


@given(st.sampled_from(list(ConnectorStatus)), st.integers(min_value=0, max_value=8))
def test_status_round_trip_v16(status: ConnectorStatus, evse: int) -> None:
    if status is ConnectorStatus.OCCUPIED:
        return  # 2.0.1-only word
    payload = t.status_notification_v16(evse, status, T0)
    _validate_payload(Call("1", "StatusNotification", payload), "1.6")
    record = t.status_from_v16(payload, station_id="cp", received_at=T0 + timedelta(hours=1))
    assert (record.status, record.evse_id, record.at, record.error_code) == (status, evse, T0, None)


@given(st.sampled_from(list(ConnectorStatus)))
def test_status_v201_folds_charging_states_into_occupied(status: ConnectorStatus) -> None:
    payload = t.status_notification_v201(1, 1, status, T0)
    _validate_payload(Call("1", "StatusNotification", payload), "2.0.1")
    back = t.status_from_v201(payload, station_id="cp", received_at=T0).status
    assert back is status or back is ConnectorStatus.OCCUPIED


def test_unknown_status_word_does_not_raise() -> None:
    assert t.connector_status("VendorSpecial") is ConnectorStatus.UNAVAILABLE


def test_start_and_stop_v16() -> None:
    start = t.start_from_v16(
        {"connectorId": 2, "idTag": "card", "meterStart": 1000, "timestamp": "2026-01-05T08:00:00Z"},
        station_id="cp",
        transaction_id=17,
        received_at=T0,
    )
    assert (start.kind, start.transaction_id, start.evse_id, start.meter_wh, start.at) == (
        t.TxKind.STARTED,
        "17",
        2,
        1000,
        T0,
    )
    stop = t.stop_from_v16(
        {
            "transactionId": 17,
            "meterStop": 5000,
            "timestamp": "2026-01-05T09:00:00Z",
            "reason": "EVDisconnected",
            "transactionData": [{"timestamp": "2026-01-05T08:30:00Z", "sampledValue": [{"value": "3000"}]}],
        },
        station_id="cp",
        received_at=T0,
    )
    assert (stop.kind, stop.transaction_id, stop.meter_wh, stop.reason, len(stop.samples)) == (
        t.TxKind.ENDED,
        "17",
        5000,
        "EVDisconnected",
        1,
    )
    assert t.stop_response_v16(None) == {} and t.stop_response_v16("card")["idTagInfo"]["status"] == "Accepted"
    response = t.start_response_v16(17, AuthorizationStatus.NO_CREDIT)
    assert response["idTagInfo"]["status"] == "Invalid"  # 1.6 has no NoCredit


def test_meter_values_without_transaction_id() -> None:
    update = t.meter_values_from_v16(
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-01-05T08:05:00Z", "sampledValue": [{"value": "1.5", "unit": "kWh"}]}],
        },
        station_id="cp",
        received_at=T0,
    )
    assert update.transaction_id is None and update.evse_id == 1 and update.samples[0].value == 1500


samples = st.lists(
    st.builds(
        MeterSample,
        station_id=st.just("cp"),
        evse_id=st.just(1),
        measured_at=st.integers(min_value=0, max_value=10_000).map(lambda s: T0 + timedelta(seconds=s)),
        measurand=st.sampled_from([Measurand.ENERGY_IMPORT_REGISTER, Measurand.POWER_IMPORT, Measurand.SOC]),
        value=st.integers(min_value=0, max_value=100).map(float),  # within every measurand's bounds (SoC: %)
        context=st.just(ReadingContext.SAMPLE_PERIODIC),
    ),
    max_size=5,
)


@given(st.sampled_from(list(t.TxKind)), samples, st.integers(min_value=0, max_value=100), st.booleans())
def test_transaction_event_round_trip(kind: t.TxKind, sampled: list[MeterSample], seq: int, offline: bool) -> None:
    update = t.TxUpdate(
        kind=kind,
        station_id="cp",
        at=T0,
        transaction_id="tx-1",
        evse_id=1,
        id_tag="card",
        reason="EVDisconnected" if kind is t.TxKind.ENDED else None,
        samples=tuple(sampled),
        seq_no=seq,
        offline=offline,
    )
    payload = t.transaction_event_v201(update, trigger_reason="Authorized", seq_no=seq)
    _validate_payload(Call("1", "TransactionEvent", payload), "2.0.1")
    back = t.transaction_event_from_v201(payload, station_id="cp", received_at=T0 + timedelta(days=1))
    assert (back.kind, back.transaction_id, back.evse_id, back.id_tag, back.at, back.seq_no, back.offline) == (
        kind,
        "tx-1",
        1,
        "card",
        T0,
        seq,
        offline,
    )
    assert back.reason == update.reason
    assert sorted(s.value for s in back.samples) == sorted(s.value for s in sampled)


def test_transaction_event_begin_register_is_the_start_meter() -> None:
    payload = {
        "eventType": "Started",
        "timestamp": "2026-01-05T08:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "abc"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": "2026-01-05T08:00:00Z",
                "sampledValue": [{"value": 12.0, "context": "Transaction.Begin", "unitOfMeasure": {"unit": "kWh"}}],
            }
        ],
    }
    assert t.transaction_event_from_v201(payload, station_id="cp", received_at=T0).meter_wh == 12_000


def test_charging_needs() -> None:
    needs = t.charging_needs_from_v201(
        {
            "evseId": 1,
            "chargingNeeds": {
                "requestedEnergyTransfer": "DC",
                "departureTime": "2026-01-05T17:00:00Z",
                "dcChargingParameters": {
                    "evMaxCurrent": 100,
                    "evMaxVoltage": 400,
                    "energyAmount": 30000,
                    "evMaxPower": 50000,
                },
            },
        },
        received_at=T0,
    )
    assert needs == t.ChargingNeeds(
        evse_id=1, departure_at=T0 + timedelta(hours=9), energy_requested_wh=30000, ev_max_power_w=50000
    )


def test_transaction_event_answer_only_with_token() -> None:
    assert t.transaction_event_response(None, None) == {}
    assert t.transaction_event_response("c", AuthorizationStatus.BLOCKED) == {"idTokenInfo": {"status": "Blocked"}}
