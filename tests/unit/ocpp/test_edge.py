"""Edge checks: every number, time, identifier and string a station sends, bounded without raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems.domain.register import FLAG_CLOCK_AHEAD, FLAG_CLOCK_BEHIND, FLAG_OUT_OF_RANGE, FLAG_TIME_UNREADABLE
from ems.domain.session import Measurand
from ems.domain.station import ConnectorStatusRecord, OcppVersion
from ems.ocpp import translate as t
from ems.ocpp.translate import edge
from ems.ocpp.translate.inbound import Rejected, interpret

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("9999-12-31T23:59:59-05:00", FLAG_TIME_UNREADABLE),  # UTC would be year 10000
        ("0001-01-01T00:00:00+01:00", FLAG_TIME_UNREADABLE),  # UTC would be year 0
        ("9999-12-31T23:59:59Z", FLAG_CLOCK_AHEAD),
        ("0001-01-01T00:00:00Z", FLAG_CLOCK_BEHIND),
        ("2026-01-05T09:00:00Z", FLAG_CLOCK_AHEAD),  # an hour ahead
        ("2029-01-05T08:00:00Z", FLAG_CLOCK_AHEAD),  # years ahead
        ("1970-01-01T00:00:00Z", FLAG_CLOCK_BEHIND),  # an RTC reset
        ("not a time", FLAG_TIME_UNREADABLE),
    ],
)
def test_bad_station_times_become_the_receive_time_with_a_flag(text: str, flag: str) -> None:
    assert edge.station_time(text, T0) == edge.StationTime(T0, flag)


def test_good_station_times_are_kept() -> None:
    assert edge.station_time("2026-01-05T08:04:00Z", T0).at == T0 + timedelta(minutes=4)  # drift within 5 min
    late = edge.station_time("2025-12-20T08:00:00+01:00", T0)  # an offline queue, two weeks late
    assert late == edge.StationTime(datetime(2025, 12, 20, 7, 0, tzinfo=UTC))
    assert edge.station_time(None, T0) == edge.StationTime(T0)


@pytest.mark.parametrize(
    ("value", "unit", "multiplier", "measurand"),
    [
        (1e306, 1000.0, 0, Measurand.ENERGY_IMPORT_REGISTER),  # "1e306" kWh: inf after scaling
        (1.0, 1.0, 400, Measurand.ENERGY_IMPORT_REGISTER),  # 10.0**400 overflows
        (1.0, 1.0, -400, Measurand.POWER_IMPORT),
        (2e11, 1.0, 0, Measurand.ENERGY_IMPORT_REGISTER),  # above 100 GWh
        (-5.0, 1.0, 0, Measurand.ENERGY_IMPORT_REGISTER),
        (101.0, 1.0, 0, Measurand.SOC),
        (-300.0, 1.0, 0, Measurand.TEMPERATURE),
        (2e7, 1.0, 0, Measurand.POWER_IMPORT),
    ],
)
def test_numbers_are_bounded_after_scaling(value: float, unit: float, multiplier: int, measurand: Measurand) -> None:
    assert edge.scaled_value(value, unit, 0.0, multiplier, measurand) is None


def test_numbers_within_bounds_pass() -> None:
    assert edge.scaled_value(12.5, 1000.0, 0.0, 0, Measurand.ENERGY_IMPORT_REGISTER) == 12_500.0
    assert edge.scaled_value(7.0, 1.0, 0.0, 3, Measurand.POWER_IMPORT) == 7_000.0
    assert edge.number("1e400") is None and edge.number(10**400) is None and edge.number(True) is None
    assert edge.register_or_none(10**30) is None and edge.register_or_none(1234) == 1234.0


def test_evse_numbers_and_text() -> None:
    assert edge.evse_number(3) == 3
    for bad in (-1, 10**12, 1.5, "1", True):
        with pytest.raises(edge.Unusable):
            edge.evse_number(bad)
    assert edge.clean_text("a\ud800b\x00c") == "a\ufffdb\ufffdc"
    assert edge.clean_payload({"k\udc00": ["x\x00", 1, {"y": "\U0001f50c"}]}) == {
        "k\ufffd": ["x\ufffd", 1, {"y": "\U0001f50c"}]
    }


def test_the_issue_cases_through_interpret() -> None:
    status = interpret(
        OcppVersion.V16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "9999-12-31T23:59:59-05:00"},
        {},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(status, ConnectorStatusRecord) and status.at == T0
    start = interpret(
        OcppVersion.V16,
        "StartTransaction",
        {"connectorId": 1, "idTag": "A", "meterStart": 5, "timestamp": "0001-01-01T00:00:00+01:00"},
        {"transactionId": 7, "idTagInfo": {"status": "Accepted"}},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(start, t.TxUpdate) and start.at == T0 and start.authorized is True
    meter = interpret(
        OcppVersion.V201,
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": "2026-01-05T08:00:00Z",
                    "sampledValue": [{"value": 1, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}}],
                }
            ],
        },
        {},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(meter, t.TxUpdate)
    assert [(s.value, s.flag, s.raw_unit) for s in meter.samples] == [(0.0, FLAG_OUT_OF_RANGE, "Whe400")]
    huge = interpret(
        OcppVersion.V16,
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 7,
            "meterValue": [{"timestamp": "2026-01-05T08:00:00Z", "sampledValue": [{"value": "1e306", "unit": "kWh"}]}],
        },
        {},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(huge, t.TxUpdate) and [(s.value, s.flag) for s in huge.samples] == [(0.0, FLAG_OUT_OF_RANGE)]
    far = interpret(
        OcppVersion.V201,
        "StatusNotification",
        {"timestamp": "2026-01-05T08:00:00Z", "connectorStatus": "Faulted", "evseId": 10**15, "connectorId": 1},
        {},
        station_id="cp",
        received_at=T0,
    )
    assert isinstance(far, Rejected) and "evseId" in far.reason


def test_time_corrected_samples_still_feed_the_register() -> None:
    [s] = t.meter_samples_v16(
        [{"timestamp": "2027-01-01T00:00:00Z", "sampledValue": [{"value": "1500"}]}],
        station_id="cp",
        evse_id=1,
        session_id=None,
        received_at=T0,
    )
    assert (s.measured_at, s.value, s.flag) == (T0, 1500.0, FLAG_CLOCK_AHEAD)
    state, [tracked] = t.apply_register(t.RegisterState(meter_start_wh=1000.0), [s])
    assert state.energy_wh == 500.0 and tracked.flag == FLAG_CLOCK_AHEAD
