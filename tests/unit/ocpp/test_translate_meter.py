"""Meter values: parsing both versions, units, round trips, register tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.ocpp.translate import (
    FLAG_BACKWARDS,
    FLAG_RESET,
    FLAG_UNPARSEABLE,
    RegisterState,
    apply_register,
    format_time,
    meter_samples_v16,
    meter_samples_v201,
    meter_value_list_v16,
    meter_value_list_v201,
    parse_time,
    power_w,
    track_register,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def parse16(values: list[dict[str, object]]) -> list[MeterSample]:
    return meter_samples_v16(values, station_id="cp1", evse_id=1, session_id=None, received_at=T0)


def parse201(values: list[dict[str, object]]) -> list[MeterSample]:
    return meter_samples_v201(values, station_id="cp1", evse_id=1, session_id=None, received_at=T0)


def test_v16_defaults_to_energy_register_in_wh() -> None:
    [s] = parse16([{"timestamp": "2026-01-05T08:00:10Z", "sampledValue": [{"value": "1234"}]}])
    assert s.measurand is Measurand.ENERGY_IMPORT_REGISTER
    assert s.value == 1234.0
    assert s.measured_at == T0 + timedelta(seconds=10)
    assert s.raw_value == "1234"


def test_v16_kwh_and_kw_are_scaled_raw_kept() -> None:
    samples = parse16(
        [
            {
                "timestamp": "2026-01-05T08:00:00Z",
                "sampledValue": [
                    {"value": "12.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                    {"value": "7.2", "unit": "kW", "measurand": "Power.Active.Import", "phase": "L1"},
                    {"value": "50", "unit": "Fahrenheit", "measurand": "Temperature"},
                ],
            }
        ]
    )
    assert [s.value for s in samples] == pytest.approx([12500.0, 7200.0, 10.0])
    assert samples[0].raw_value == "12.5" and samples[0].raw_unit == "kWh"
    assert samples[1].phase == "L1"


def test_v201_multiplier_is_power_of_ten() -> None:
    [s] = parse201(
        [
            {
                "timestamp": "2026-01-05T08:00:00Z",
                "sampledValue": [{"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}],
            }
        ]
    )
    assert s.value == pytest.approx(12500.0)


def test_unparseable_values_are_flagged_not_raised() -> None:
    samples = parse16(
        [{"timestamp": "garbage", "sampledValue": [{"value": "abc", "format": "SignedData"}, {"value": "nan"}]}]
    )
    assert [s.flag for s in samples] == [FLAG_UNPARSEABLE, FLAG_UNPARSEABLE]
    assert samples[0].measured_at == T0  # unreadable timestamp -> received time


def test_unknown_measurand_is_other_and_context_kept() -> None:
    [s] = parse16(
        [{"sampledValue": [{"value": "3", "measurand": "Energy.Reactive.Import.Register", "context": "Trigger"}]}]
    )
    assert s.measurand is Measurand.OTHER
    assert s.context is ReadingContext.TRIGGER


# hypothesis takes naive bounds and attaches the timezone itself
NAIVE_MIN = datetime(2020, 1, 1)  # noqa: DTZ001
NAIVE_MAX = datetime(2026, 1, 5, 8, 0)  # noqa: DTZ001  (T0: not ahead of the receive time)

samples_st = st.lists(
    st.builds(
        MeterSample,
        station_id=st.just("cp1"),
        evse_id=st.just(1),
        measured_at=st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX, timezones=st.just(UTC)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, fold=0)
        ),
        measurand=st.sampled_from(
            [Measurand.ENERGY_IMPORT_REGISTER, Measurand.POWER_IMPORT, Measurand.CURRENT_IMPORT, Measurand.SOC]
        ),
        value=st.integers(min_value=0, max_value=100).map(float),  # within every measurand's bounds (SoC: %)
        phase=st.sampled_from([None, "L1", "L2", "L3"]),
        context=st.sampled_from(list(ReadingContext)),
    ),
    max_size=12,
)


def _key(s: MeterSample) -> tuple[object, ...]:
    return (s.measured_at, s.measurand, s.value, s.phase, s.context)


@given(samples_st)
def test_v16_round_trip(samples: list[MeterSample]) -> None:
    back = parse16(meter_value_list_v16(samples))
    assert sorted(map(_key, back), key=repr) == sorted(map(_key, samples), key=repr)


@given(samples_st)
def test_v201_round_trip(samples: list[MeterSample]) -> None:
    back = parse201(meter_value_list_v201(samples))
    assert sorted(map(_key, back), key=repr) == sorted(map(_key, samples), key=repr)


@given(st.datetimes(timezones=st.just(UTC)))
def test_time_round_trip_to_the_millisecond(when: datetime) -> None:
    assert parse_time(format_time(when), T0) == when.replace(microsecond=when.microsecond // 1000 * 1000, fold=0)


def test_naive_and_offset_times_become_utc() -> None:
    assert parse_time("2026-01-05T09:00:00+01:00", T0) == T0
    assert parse_time("2026-01-05T08:00:00", T0 - timedelta(days=1)) == T0


# ------------------------------------------------------------------ register tracking


def test_lifetime_register_gives_session_energy() -> None:
    state = RegisterState(meter_start_wh=100_000)
    for reading in (100_500, 101_000, 102_000):
        state, lifetime, flag = track_register(state, reading)
        assert flag is None and lifetime == reading
    assert state.energy_wh == 2000


def test_session_relative_register_is_detected() -> None:
    state = RegisterState(meter_start_wh=100_000)
    state, lifetime, flag = track_register(state, 500)
    assert state.relative is True and lifetime == 100_500 and flag is None
    state, lifetime, _ = track_register(state, 1500)
    assert lifetime == 101_500 and state.energy_wh == 1500


def test_backwards_jitter_is_flagged_and_energy_kept() -> None:
    state = RegisterState(meter_start_wh=100_000)
    state, _, _ = track_register(state, 102_000)
    state, _, flag = track_register(state, 101_900)
    assert flag == FLAG_BACKWARDS and state.energy_wh == 2000


def test_reset_continues_counting_from_last_value() -> None:
    state = RegisterState(meter_start_wh=100_000)
    state, _, _ = track_register(state, 102_000)
    state, lifetime, flag = track_register(state, 10)
    assert flag == FLAG_RESET and lifetime == 102_000
    state, lifetime, flag = track_register(state, 510)
    assert flag is None and lifetime == 102_500 and state.energy_wh == 2500


@given(st.floats(min_value=0, max_value=1e9), st.lists(st.floats(min_value=-1e9, max_value=1e10), max_size=30))
def test_session_energy_never_decreases(start: float, readings: list[float]) -> None:
    state = RegisterState(meter_start_wh=start)
    energy = 0.0
    for r in readings:
        state, _, _ = track_register(state, r)
        assert state.energy_wh >= energy - 1e-6
        energy = state.energy_wh


def test_apply_register_goes_in_time_order() -> None:
    def reg(seconds: int, value: float) -> MeterSample:
        return MeterSample("cp1", 1, T0 + timedelta(seconds=seconds), Measurand.ENERGY_IMPORT_REGISTER, value)

    # an offline queue delivering the later reading first must not look like going backwards
    state, out = apply_register(RegisterState(meter_start_wh=1000), [reg(20, 3000), reg(10, 2000)])
    assert [s.flag for s in out] == [None, None]
    assert state.energy_wh == 2000


def test_power_sums_phases_when_no_total() -> None:
    def p(phase: str | None, value: float) -> MeterSample:
        return MeterSample("cp1", 1, T0, Measurand.POWER_IMPORT, value, phase=phase)

    assert power_w([p("L1", 1000), p("L2", 1100), p("L3", 900)]) == 3000
    assert power_w([p("L1", 1000), p(None, 2500)]) == 2500
    assert power_w([]) is None
