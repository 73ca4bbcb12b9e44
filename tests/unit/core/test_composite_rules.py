"""The composite rules of ``ems.domain.composite`` against worked examples written from the
OCPP texts (1.6 §3.13 "Smart Charging", §5.16; 2.0.1 K01, K08), not from the code.

The controller and the simulator both use this module, so a misreading of the specification
would pass every end-to-end test; these expectations are computed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems.domain import composite
from ems.domain.composite import Hardware, Period

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HW = Hardware(max_current_a=32.0, phases=3, voltage_v=230.0)


def prof(
    pid: int,
    purpose: str,
    stack: int,
    periods: list[tuple[int, float]],
    *,
    unit: str = "A",
    phases: int | None = None,
    evse: int = 1,
    start_at: datetime | None = None,
    duration_s: int | None = None,
    transaction_id: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> composite.InstalledProfile:
    return composite.profile(
        id=pid,
        evse_id=evse,
        purpose=purpose,
        stack_level=stack,
        rate_unit=unit,
        periods=[Period(s, lim, phases) for s, lim in periods],
        start_at=start_at,
        duration_s=duration_s,
        transaction_id=transaction_id,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def limit(profiles: list[composite.InstalledProfile], t: datetime, tx: str | None = "42") -> composite.EvseLimit:
    return composite.evse_limit(profiles, evse_id=1, t=t, hw=HW, tx_id=tx, tx_started_at=T0)


def test_no_profile_means_the_hardware_maximum() -> None:
    assert limit([], T0) == composite.EvseLimit(32.0, 3)


def test_a_tx_profile_overrides_the_default_while_in_effect_then_the_default_holds_again() -> None:
    """A relative TxProfile runs from the transaction's start for its duration; within it the
    period with the latest start at or before t holds; after it, the TxDefaultProfile."""
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    tx = prof(2, "TxProfile", 0, [(0, 10.0), (600, 20.0), (1200, 5.0)], duration_s=1800, transaction_id="42")
    profiles = [default, tx]
    assert limit(profiles, T0 + timedelta(seconds=300)).current_a == 10.0
    assert limit(profiles, T0 + timedelta(seconds=600)).current_a == 20.0  # a TxProfile is not min'd with the default
    assert limit(profiles, T0 + timedelta(seconds=1799)).current_a == 5.0
    assert limit(profiles, T0 + timedelta(seconds=1800)).current_a == 16.0


def test_the_highest_stack_level_in_effect_wins_and_the_lower_one_returns_after_it() -> None:
    base = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    evening = prof(
        2, "TxDefaultProfile", 1, [(0, 8.0)], start_at=T0 + timedelta(hours=1), duration_s=3600
    )  # absolute: 09:00-10:00
    assert limit([base, evening], T0 + timedelta(minutes=30)).current_a == 16.0
    assert limit([base, evening], T0 + timedelta(minutes=90)).current_a == 8.0
    assert limit([evening, base], T0 + timedelta(minutes=150)).current_a == 16.0  # order of installing is irrelevant


def test_a_tx_profile_for_another_transaction_does_not_apply() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    other = prof(2, "TxProfile", 0, [(0, 6.0)], transaction_id="41")
    assert limit([default, other], T0).current_a == 16.0


def test_without_a_transaction_only_the_default_applies() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    tx = prof(2, "TxProfile", 0, [(0, 6.0)])
    assert limit([default, tx], T0, tx=None).current_a == 16.0


def test_the_station_maximum_caps_every_purpose_and_watts_become_amps_per_phase() -> None:
    """11,040 W on 3 phases at 230 V is 16 A per phase; it caps a 32 A TxProfile (a minimum,
    unlike a TxProfile over the default)."""
    cap = prof(1, "ChargePointMaxProfile", 0, [(0, 11040.0)], unit="W", evse=0)
    tx = prof(2, "TxProfile", 0, [(0, 32.0)], transaction_id="42")
    got = limit([cap, tx], T0)
    assert got.current_a == pytest.approx(16.0) and got.phases == 3
    assert composite.station_cap_a([cap, tx], t=T0, hw=HW) == pytest.approx(16.0)
    # The 2.0.1 name means the same.
    cap201 = prof(1, "ChargingStationMaxProfile", 0, [(0, 11040.0)], unit="W", evse=0)
    assert limit([cap201, tx], T0).current_a == pytest.approx(16.0)


def test_a_default_on_evse_0_applies_to_every_evse() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 12.0)], evse=0)
    assert limit([default], T0).current_a == 12.0


def test_a_watt_limit_on_one_phase_is_per_that_phase() -> None:
    """numberPhases 1: 7,360 W is 32 A on one phase at 230 V, and the EVSE charges on one phase."""
    tx = prof(2, "TxProfile", 0, [(0, 7360.0)], unit="W", phases=1, transaction_id="42")
    got = limit([tx], T0)
    assert got.current_a == pytest.approx(32.0) and got.phases == 1


def test_validity_bounds_the_profile() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    later = prof(
        2, "TxDefaultProfile", 1, [(0, 6.0)], valid_from=T0 + timedelta(hours=2), valid_to=T0 + timedelta(hours=3)
    )
    assert limit([default, later], T0 + timedelta(hours=1)).current_a == 16.0
    assert limit([default, later], T0 + timedelta(hours=2, minutes=30)).current_a == 6.0
    assert limit([default, later], T0 + timedelta(hours=3)).current_a == 16.0  # validTo is exclusive


def test_installing_replaces_the_same_id_and_the_same_purpose_stack_and_evse() -> None:
    a = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    b = prof(2, "TxDefaultProfile", 0, [(0, 10.0)])  # same purpose, stack level and EVSE: replaces a
    c = prof(2, "TxDefaultProfile", 1, [(0, 8.0)])  # same id as b: replaces b
    held = composite.install(composite.install((a,), b), c)
    assert held == (c,)
    d = prof(3, "TxDefaultProfile", 0, [(0, 6.0)], evse=2)  # another EVSE: kept beside
    assert set(composite.install(held, d)) == {c, d}


def test_a_transaction_end_removes_its_tx_profiles_only() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    tx = prof(2, "TxProfile", 0, [(0, 6.0)], transaction_id="42")
    assert composite.end_transaction((default, tx), 1, "42") == (default,)
    assert limit(list(composite.end_transaction((default, tx), 1, "42")), T0).current_a == 16.0


def test_before_the_first_period_nothing_of_that_profile_holds() -> None:
    default = prof(1, "TxDefaultProfile", 0, [(0, 16.0)])
    tx = prof(2, "TxProfile", 0, [(300, 6.0)], transaction_id="42")  # first period starts 5 min in
    assert limit([default, tx], T0 + timedelta(seconds=100)).current_a == 16.0
    assert limit([default, tx], T0 + timedelta(seconds=300)).current_a == 6.0
