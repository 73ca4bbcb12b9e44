"""The simulator's pure parts: battery model with taper, profile stacking, scaled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ems.clock import FakeClock
from ems.sim.clock import ScaledClock
from ems.sim.ev import Ev
from ems.sim.profiles import Period, Profile, effective_limit_w, profile_from_v16, profile_from_v201

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_full_power_below_knee_then_taper() -> None:
    assert Ev(soc=0.5, max_power_w=11_000).acceptance_w() == 11_000
    assert Ev(soc=0.9, max_power_w=11_000).acceptance_w() == pytest.approx(11_000 * 0.55)
    assert Ev(soc=1.0).acceptance_w() == 0 and Ev(soc=1.0).full


def test_draw_is_min_of_limit_and_acceptance() -> None:
    ev = Ev(soc=0.5, max_power_w=11_000)
    assert ev.draw_w(None) == 11_000
    assert ev.draw_w(4_000) == 4_000
    assert ev.draw_w(-5) == 0


@given(
    st.floats(min_value=0, max_value=0.99),
    st.floats(min_value=0, max_value=50_000),
    st.floats(min_value=0, max_value=36_000),
)
def test_charging_conserves_energy_and_never_overfills(soc: float, power: float, seconds: float) -> None:
    ev = Ev(capacity_wh=50_000, soc=soc)
    after, energy = ev.charged(power, seconds)
    assert after.soc <= 1.0
    assert energy == pytest.approx((after.soc - soc) * 50_000, abs=1e-6)
    assert energy <= power * seconds / 3600 + 1e-9


def profile(
    purpose: str, limit: float, *, stack: int = 0, unit: str = "W", evse: int = 1, tx: str | None = None
) -> Profile:
    return Profile(
        id=hash((purpose, stack, evse)) % 1000,
        evse_id=evse,
        purpose=purpose,
        stack_level=stack,
        rate_unit=unit,
        periods=(Period(0, limit),),
        transaction_id=tx,
    )


def test_stacking_and_min_of_max_and_tx() -> None:
    profiles = [
        profile("TxDefaultProfile", 7_000),
        profile("TxDefaultProfile", 5_000, stack=1),
        profile("ChargePointMaxProfile", 16, unit="A", evse=0),  # 16 A x 230 V x 3 = 11,040 W
    ]
    assert effective_limit_w(profiles, evse_id=1, now=T0, tx_id=None, tx_started_at=None) == 5_000
    profiles.append(profile("TxProfile", 9_000, tx="42"))
    assert effective_limit_w(profiles, evse_id=1, now=T0, tx_id="42", tx_started_at=T0) == 9_000
    profiles.append(profile("ChargePointMaxProfile", 8_000, evse=0, stack=2))
    assert effective_limit_w(profiles, evse_id=1, now=T0, tx_id="42", tx_started_at=T0) == 8_000
    assert effective_limit_w([], evse_id=1, now=T0, tx_id=None, tx_started_at=None) is None


def test_periods_and_duration() -> None:
    p = Profile(1, 1, "TxDefaultProfile", 0, "W", (Period(0, 3000), Period(600, 6000)), start_at=T0, duration_s=1200)

    def limit(seconds: float) -> float | None:
        return effective_limit_w([p], evse_id=1, now=T0 + timedelta(seconds=seconds), tx_id=None, tx_started_at=None)

    assert limit(10) == pytest.approx(3000)
    assert limit(700) == pytest.approx(6000), "a later period is followed, not only the first"
    assert limit(1300) is None, "past its duration the profile no longer limits"
    assert limit(-1) is None


def test_profiles_from_library_handler_arguments() -> None:
    v16 = profile_from_v16(
        1,
        {
            "charging_profile_id": 3,
            "stack_level": 1,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": {
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 10.0, "number_phases": 1}],
            },
        },
    )
    assert effective_limit_w([v16], evse_id=1, now=T0, tx_id=None, tx_started_at=None) == pytest.approx(2300)
    v201 = profile_from_v201(
        1,
        {
            "id": 4,
            "stack_level": 0,
            "charging_profile_purpose": "ChargingStationMaxProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": [
                {
                    "id": 4,
                    "start_schedule": "2026-01-05T08:00:00Z",
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [{"start_period": 0, "limit": 7000}],
                }
            ],
        },
    )
    assert v201.start_at == T0 and v201.purpose == "ChargePointMaxProfile"
    assert effective_limit_w([v201], evse_id=1, now=T0, tx_id=None, tx_started_at=None) == pytest.approx(7000)


async def test_scaled_clock_runs_faster() -> None:
    base = FakeClock(T0)
    clock = ScaledClock(base, speed=60)
    base.advance(2)
    assert clock.now() == T0 + timedelta(minutes=2)
