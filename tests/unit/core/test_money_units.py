from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ems.domain.money import MINOR_UNITS, CurrencyError, Money, minor_str
from ems.domain.units import current_a_from_power_w, power_w_from_current_a


def test_money_is_exact_and_rounds_half_even() -> None:
    assert Money.of("0.1", "EUR") + Money.of("0.2", "EUR") == Money.of("0.3", "EUR")
    assert Money.of("0.125", "EUR").rounded().amount == Decimal("0.12")
    assert Money.of("0.135", "EUR").rounded().amount == Decimal("0.14")
    assert Money.of("7", "JPY").as_str() == "7"
    assert Money.of("16", "EUR").as_str() == "16.00"


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from(sorted(MINOR_UNITS)))
def test_minor_str_prints_what_money_prints(minor: int, currency: str) -> None:
    assert minor_str(minor, currency) == Money.from_minor(minor, currency).as_str()


def test_minor_str_examples_and_unknown_currency() -> None:
    assert [minor_str(m, "EUR") for m in (0, 5, -5, 1600, -123456)] == ["0.00", "0.05", "-0.05", "16.00", "-1234.56"]
    assert minor_str(-7, "JPY") == "-7"
    with pytest.raises(CurrencyError):
        minor_str(1, "XXX")


def test_money_refuses_floats_mixed_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        Money(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.of("1", "EUR") * 0.5  # type: ignore[operator]
    with pytest.raises(CurrencyError):
        Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(CurrencyError):
        Money.of("1", "XXX")
    with pytest.raises(ValueError, match="not a decimal"):
        Money.of("1,5", "EUR")
    with pytest.raises(ValueError, match="finite"):
        Money.of("NaN", "EUR")


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["EUR", "JPY", "USD"]))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    assert Money.from_minor(minor, currency).to_minor() == minor


def test_to_minor_refuses_unrounded_amounts() -> None:
    with pytest.raises(ValueError, match="round it first"):
        Money.of("0.125", "EUR").to_minor()


@given(st.floats(min_value=0, max_value=1000), st.sampled_from([1, 3]), st.floats(min_value=100, max_value=400))
def test_power_current_round_trip(current_a: float, phases: int, voltage_v: float) -> None:
    power_w = power_w_from_current_a(current_a, voltage_v, phases)
    assert current_a_from_power_w(power_w, voltage_v, phases) == pytest.approx(current_a)


def test_three_phase_16a_is_11kw() -> None:
    assert power_w_from_current_a(16, 230, 3) == pytest.approx(11040)
    with pytest.raises(ValueError):
        power_w_from_current_a(16, 230, 4)
