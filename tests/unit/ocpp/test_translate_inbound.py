"""``interpret``: one journaled message -> its domain meaning, never an exception for station data."""

from __future__ import annotations

from datetime import UTC, datetime

from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, OcppVersion
from ems.ocpp import translate as t
from ems.ocpp.translate.inbound import JOURNALED, Booted, Ignored, Rejected, interpret

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_start_takes_the_transaction_id_from_our_answer() -> None:
    meaning = interpret(
        OcppVersion.V16,
        "StartTransaction",
        {"connectorId": 1, "idTag": "A", "meterStart": 5, "timestamp": "2026-01-05T08:00:00Z"},
        {"transactionId": 77, "idTagInfo": {"status": "Accepted"}},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(meaning, t.TxUpdate) and meaning.transaction_id == "77" and meaning.kind is t.TxKind.STARTED


def test_status_and_boot_both_versions() -> None:
    v16 = interpret(
        OcppVersion.V16,
        "StatusNotification",
        {"connectorId": 2, "errorCode": "NoError", "status": "Faulted"},
        {},
        station_id="cp",
        received_at=T0,
    )
    v201 = interpret(
        OcppVersion.V201,
        "StatusNotification",
        {"timestamp": "2026-01-05T08:00:00Z", "connectorStatus": "Faulted", "evseId": 2, "connectorId": 1},
        {},
        station_id="cp",
        received_at=T0,
    )
    for m in (v16, v201):
        assert isinstance(m, ConnectorStatusRecord) and m.status is ConnectorStatus.FAULTED and m.evse_id == 2
    boot = interpret(
        OcppVersion.V201,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        {},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(boot, Booted) and boot.info.vendor == "V"


def test_unusable_data_is_rejected_not_raised() -> None:
    bad = interpret(OcppVersion.V16, "StartTransaction", {"connectorId": 1}, {}, station_id="cp", received_at=T0)
    assert isinstance(bad, Rejected) and "transactionId" in bad.reason
    assert isinstance(interpret(OcppVersion.V16, "Heartbeat", {}, {}, station_id="cp", received_at=T0), Ignored)


def test_journaled_actions_per_version() -> None:
    assert "StartTransaction" in JOURNALED[OcppVersion.V16] and "StartTransaction" not in JOURNALED[OcppVersion.V201]
    assert "TransactionEvent" in JOURNALED[OcppVersion.V201]
