from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from ems.billing.pricing import energy_readings, price_session, round_money, usage_from_session
from ems.domain.billing import EnergyReading, LineKind, SessionUsage
from ems.domain.money import Money
from ems.domain.session import ChargingSession, Measurand, MeterSample, SessionStatus
from ems.domain.tariff import Tariff, TouBand

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # a Monday; 17:00 in Amsterdam (CET)
AMS = "Europe/Amsterdam"


def _usage(start: datetime, stop: datetime, *points: tuple[datetime, int]) -> SessionUsage:
    return SessionUsage(start, stop, tuple(EnergyReading(at, Decimal(wh)) for at, wh in points))


def test_a_full_tariff_prices_each_component_and_adds_up() -> None:
    tariff = Tariff(
        "t1",
        "Standard",
        "EUR",
        energy_per_kwh=Decimal("0.30"),
        time_per_minute=Decimal("0.01"),
        session_fee=Decimal("1.00"),
        idle_per_minute=Decimal("0.10"),
        idle_grace_minutes=10,
        tou=(TouBand("peak", time(17), time(21), energy_per_kwh=Decimal("0.45")),),
        vat_percent=Decimal("21"),
    )
    usage = _usage(
        T0 - timedelta(hours=1),
        T0 + timedelta(hours=3),
        (T0 - timedelta(hours=1), 1000),
        (T0 + timedelta(hours=2), 31000),
    )
    cdr = price_session(tariff, usage, AMS)
    got = [(line.kind, line.band, line.quantity, line.amount.as_str()) for line in cdr.line_items]
    assert got == [
        (LineKind.SESSION_FEE, None, Decimal(1), "1.00"),
        (LineKind.ENERGY, None, Decimal("10.000"), "3.00"),  # 16:00-17:00 local: 1/3 of 30 kWh
        (LineKind.ENERGY, "peak", Decimal("20.000"), "9.00"),
        (LineKind.CHARGING_TIME, None, Decimal("60.00"), "0.60"),
        (LineKind.CHARGING_TIME, "peak", Decimal("120.00"), "1.20"),  # the band keeps the base time price
        (LineKind.IDLE_TIME, None, Decimal("50.00"), "5.00"),
        (LineKind.VAT, None, Decimal(0), "4.16"),  # 21% of 19.80 = 4.158
    ]
    assert cdr.net == Money.of("19.80", "EUR")
    assert cdr.vat == Money.of("4.16", "EUR")  # 4.158 rounds half-even to 4.16
    assert cdr.total == Money.of("23.96", "EUR")
    assert cdr.energy_wh == Decimal(30000)
    assert cdr.charging_ended_at == T0 + timedelta(hours=2)


def test_minimum_and_maximum_price_add_an_adjustment_line() -> None:
    tariff = Tariff("t", "x", "EUR", energy_per_kwh=Decimal("1"), min_price=Decimal("2.50"), max_price=Decimal("10"))
    small = price_session(tariff, _usage(T0, T0 + timedelta(hours=1), (T0, 0), (T0 + timedelta(hours=1), 1000)), "UTC")
    assert [(line.kind, line.amount.as_str()) for line in small.line_items][-1] == (LineKind.MINIMUM_PRICE, "1.50")
    assert small.total == Money.of("2.50", "EUR")
    big = price_session(tariff, _usage(T0, T0 + timedelta(hours=1), (T0, 0), (T0 + timedelta(hours=1), 40000)), "UTC")
    assert [(line.kind, line.amount.as_str()) for line in big.line_items][-1] == (LineKind.MAXIMUM_PRICE, "-30.00")
    assert big.total == Money.of("10.00", "EUR")


def test_rounding_is_half_even_per_line() -> None:
    from fractions import Fraction

    assert round_money(Fraction(1, 8), "EUR") == Money.of("0.12", "EUR")
    assert round_money(Fraction(3, 8), "EUR") == Money.of("0.38", "EUR")
    assert round_money(Fraction(-1, 8), "EUR") == Money.of("-0.12", "EUR")
    assert round_money(Fraction(5, 2), "JPY") == Money.of("2", "JPY")
    tariff = Tariff("t", "x", "EUR", energy_per_kwh=Decimal("0.125"))
    cdr = price_session(tariff, _usage(T0, T0 + timedelta(hours=1), (T0, 0), (T0 + timedelta(hours=1), 1000)), "UTC")
    assert cdr.total == Money.of("0.12", "EUR")


def test_parking_and_time_bands() -> None:
    tariff = Tariff(
        "t",
        "x",
        "EUR",
        time_per_minute=Decimal("0.02"),
        parking_per_minute=Decimal("0.01"),
        tou=(TouBand("peak", time(17), time(18), time_per_minute=Decimal("0.05")),),
    )
    # 16:30-17:30 local charging, then parked until 18:30 local.
    start = T0 - timedelta(minutes=30)
    cdr = price_session(
        tariff, _usage(start, start + timedelta(hours=2), (start, 0), (start + timedelta(hours=1), 7000)), AMS
    )
    got = [(line.kind, line.band, line.amount.as_str()) for line in cdr.line_items]
    assert got == [
        (LineKind.ENERGY, None, "0.00"),
        (LineKind.ENERGY, "peak", "0.00"),
        (LineKind.CHARGING_TIME, None, "0.60"),
        (LineKind.CHARGING_TIME, "peak", "1.50"),
        (LineKind.PARKING_TIME, None, "1.20"),
    ]


@pytest.mark.parametrize(
    ("start", "night_kwh"),
    [
        (datetime(2026, 3, 28, 23, tzinfo=UTC), Decimal("11.000")),  # 29 Mar: 00:00-06:00 is 5 real hours
        (datetime(2026, 10, 24, 22, tzinfo=UTC), Decimal("12.000")),  # 25 Oct: 00:00-06:00 is 7 real hours
    ],
)
def test_tou_bands_follow_the_wall_clock_across_dst(start: datetime, night_kwh: Decimal) -> None:
    tariff = Tariff(
        "t",
        "x",
        "EUR",
        energy_per_kwh=Decimal("0.50"),
        tou=(TouBand("night", time(0), time(6), energy_per_kwh=Decimal("0.10")),),
    )
    stop = start + timedelta(hours=30)  # 1 kW throughout
    cdr = price_session(tariff, _usage(start, stop, (start, 0), (stop, 30000)), AMS)
    night = next(line for line in cdr.line_items if line.band == "night")
    assert night.quantity == night_kwh


def test_repeated_hour_is_priced_by_what_the_wall_clock_shows() -> None:
    # 25 Oct 2026: 02:00-03:00 local happens twice (CEST then CET). A 02:30-03:00 band is in force twice.
    tariff = Tariff("t", "x", "EUR", tou=(TouBand("b", time(2, 30), time(3), energy_per_kwh=Decimal("1")),))
    start, stop = datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC)
    cdr = price_session(tariff, _usage(start, stop, (start, 0), (stop, 4 * 60)), AMS)  # 1 Wh per minute
    assert next(line for line in cdr.line_items if line.band == "b").quantity == Decimal("0.060")


def test_idle_time_is_inferred_from_when_the_register_stopped_rising() -> None:
    tariff = Tariff("t", "x", "EUR", idle_per_minute=Decimal("0.10"), idle_grace_minutes=15)
    stop = T0 + timedelta(hours=2)
    usage = _usage(
        T0, stop, (T0, 0), (T0 + timedelta(minutes=60), 5000), (T0 + timedelta(minutes=90), 5000), (stop, 5000)
    )
    cdr = price_session(tariff, usage, "UTC")
    idle = next(line for line in cdr.line_items if line.kind is LineKind.IDLE_TIME)
    assert (idle.quantity, idle.amount.as_str()) == (Decimal("45.00"), "4.50")


def test_a_session_without_readings_is_all_charging_time() -> None:
    tariff = Tariff("t", "x", "EUR", energy_per_kwh=Decimal(1), idle_per_minute=Decimal(1), session_fee=Decimal("0.5"))
    cdr = price_session(tariff, _usage(T0, T0 + timedelta(hours=1)), "UTC")
    assert cdr.total == Money.of("0.50", "EUR")
    assert cdr.charging_ended_at == T0 + timedelta(hours=1)


def test_only_trusted_energy_register_samples_are_billed() -> None:
    def sample(wh: float, **kw: object) -> MeterSample:
        base: dict[str, object] = {
            "station_id": "CP1",
            "evse_id": 1,
            "measured_at": T0,
            "measurand": Measurand.ENERGY_IMPORT_REGISTER,
            "value": wh,
        }
        base.update(kw)
        return MeterSample(**base)  # type: ignore[arg-type]

    samples = [
        sample(10.5),
        sample(99, flag="register_backwards"),
        sample(77, phase="L1"),
        sample(3000, measurand=Measurand.POWER_IMPORT),
    ]
    assert energy_readings(samples) == [EnergyReading(T0, Decimal("10.5"))]


def test_usage_from_session_adds_start_and_stop_registers() -> None:
    session = ChargingSession(
        id="s1",
        station_id="CP1",
        evse_id=1,
        connector_id=1,
        transaction_id="1",
        started_at=T0,
        meter_start_wh=1000.0,
        meter_stop_wh=13500.0,
        stopped_at=T0 + timedelta(hours=1),
        status=SessionStatus.COMPLETED,
    )
    usage = usage_from_session(session, [])
    assert usage.readings == (
        EnergyReading(T0, Decimal("1000.0")),
        EnergyReading(T0 + timedelta(hours=1), Decimal("13500.0")),
    )
    with pytest.raises(ValueError, match="has not stopped"):
        usage_from_session(ChargingSession("s2", "CP1", 1, 1, "2", T0), [])


def test_naive_and_backwards_times_are_refused() -> None:
    tariff = Tariff("t", "x", "EUR")
    with pytest.raises(ValueError, match="before it starts"):
        price_session(tariff, _usage(T0, T0 - timedelta(seconds=1)), "UTC")
    with pytest.raises(ValueError, match="naive"):
        price_session(tariff, _usage(T0.replace(tzinfo=None), T0), "UTC")
