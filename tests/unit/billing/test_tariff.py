from datetime import time
from decimal import Decimal

from ems.domain.tariff import Tariff, TouBand, tariff_problems


def _tariff(**kw: object) -> Tariff:
    base: dict[str, object] = {"id": "t", "name": "Standard", "currency": "EUR"}
    base.update(kw)
    return Tariff(**base)  # type: ignore[arg-type]


def test_a_plain_tariff_is_valid() -> None:
    tariff = _tariff(
        energy_per_kwh=Decimal("0.30"),
        session_fee=Decimal("1.00"),
        tou=(
            TouBand("peak", time(17), time(21), energy_per_kwh=Decimal("0.45")),
            TouBand("night", time(23), time(6), energy_per_kwh=Decimal("0.20")),
        ),
        min_price=Decimal("1"),
        max_price=Decimal("50"),
        vat_percent=Decimal("21"),
    )
    assert tariff_problems(tariff, timezone="Europe/Amsterdam") == []


def test_every_problem_is_reported_at_once() -> None:
    tariff = _tariff(
        name=" ",
        currency="XYZ",
        energy_per_kwh=Decimal("-0.30"),
        idle_per_minute=Decimal("-1"),
        idle_grace_minutes=-5,
        vat_percent=Decimal("120"),
        min_price=Decimal("10"),
        max_price=Decimal("5"),
        tou=(TouBand("peak", time(17), time(21), time_per_minute=Decimal("-0.1")),),
    )
    problems = tariff_problems(tariff, timezone="Mars/Olympus")
    assert problems == [
        "name must not be empty",
        "currency 'XYZ' is not a known ISO 4217 code",
        "energy_per_kwh must not be negative, got -0.30",
        "idle_per_minute must not be negative, got -1",
        "tou band 'peak' time_per_minute must not be negative, got -0.1",
        "idle_grace_minutes must not be negative, got -5",
        "vat_percent must be between 0 and 100, got 120",
        "min_price 10 exceeds max_price 5",
        "time zone 'Mars/Olympus' is not a known IANA zone",
    ]


def test_overlapping_bands_are_named_with_where_they_overlap() -> None:
    tariff = _tariff(
        tou=(
            TouBand("day", time(8), time(18)),
            TouBand("lunch", time(12), time(14), days=frozenset({2})),
            TouBand("late", time(22), time(1), days=frozenset({6})),
            TouBand("monday-early", time(0, 30), time(2), days=frozenset({0})),
        )
    )
    assert tariff_problems(tariff) == [
        "tou bands 'day' and 'lunch' overlap on Wed 12:00-14:00",
        "tou bands 'late' and 'monday-early' overlap on Mon 00:30-01:00",
    ]


def test_adjacent_and_wrapping_bands_do_not_overlap() -> None:
    tariff = _tariff(
        tou=(
            TouBand("night", time(22), time(6)),
            TouBand("day", time(6), time(18)),
            TouBand("evening", time(18), time(22)),
        )
    )
    assert tariff_problems(tariff) == []


def test_band_days_and_names_are_checked() -> None:
    tariff = _tariff(tou=(TouBand("a", time(1), time(2), days=frozenset({7})), TouBand("a", time(3), time(4))))
    assert tariff_problems(tariff) == [
        "tou band name 'a' is used more than once",
        "tou band 'a': days must be a non-empty subset of 0 (Mon) .. 6 (Sun), got [7]",
    ]


def test_a_band_ending_at_midnight_runs_to_the_end_of_its_day() -> None:
    assert TouBand("evening", time(18), time(0), days=frozenset({6})).week_intervals_s() == [
        (6 * 86400 + 18 * 3600, 7 * 86400)
    ]
