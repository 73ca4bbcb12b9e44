"""Charging profiles as a simulated station holds them, and the limit they impose (pure).

The composite rules are those of ``ems.domain.composite`` (OCPP 1.6 §3.13 / 2.0.1 K01: all
periods, validity, stack levels per purpose, TxProfile over TxDefaultProfile, the station
maximum on top), the same module the controller reasons with: the simulator follows what
it accepted exactly, so that it is a fair check of the controller. This module only reads
the library's handler arguments into ``InstalledProfile`` and answers in W.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ems.domain.composite import Hardware, InstalledProfile, Period, evse_limit, profile, station_cap_a
from ems.domain.units import NOMINAL_VOLTAGE_V
from ems.sim.wire import parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Profile = InstalledProfile
"""The simulator's name for an installed profile."""

__all__ = ["Period", "Profile", "effective_limit_w", "profile_from_v16", "profile_from_v201", "station_cap_w"]

_UNBOUNDED = Hardware(max_current_a=float("inf"), phases=3, voltage_v=NOMINAL_VOLTAGE_V)


def effective_limit_w(
    profiles: Sequence[Profile], *, evse_id: int, now: datetime, tx_id: str | None, tx_started_at: datetime | None
) -> float | None:
    """The EVSE's limit in W at ``now`` (3 phases unless a period says fewer); ``None``: no profile limits it."""
    limit = evse_limit(profiles, evse_id=evse_id, t=now, hw=_UNBOUNDED, tx_id=tx_id, tx_started_at=tx_started_at)
    if limit.current_a == float("inf"):
        return None
    return limit.power_w(NOMINAL_VOLTAGE_V)


def station_cap_w(profiles: Sequence[Profile], now: datetime) -> float | None:
    """The station-wide maximum (EVSE 0 station max profile) in W at ``now``; ``None``: none."""
    cap_a = station_cap_a(profiles, t=now, hw=_UNBOUNDED)
    return None if cap_a is None or cap_a == float("inf") else cap_a * NOMINAL_VOLTAGE_V * 3


def profile_from_v16(connector_id: int, p: dict[str, Any]) -> Profile:
    """A 1.6 ``csChargingProfiles`` as the library hands it to a handler (snake_case keys)."""
    return _profile(int(p["charging_profile_id"]), connector_id, p, p["charging_schedule"])


def profile_from_v201(evse_id: int, p: dict[str, Any]) -> Profile:
    """A 2.0.1 ``chargingProfile`` (snake_case keys); the first schedule is the one in use."""
    return _profile(int(p["id"]), evse_id, p, p["charging_schedule"][0])


def _time(value: Any) -> datetime | None:
    return parse_time(value, EPOCH) if isinstance(value, str) else None


def _profile(profile_id: int, evse_id: int, p: dict[str, Any], schedule: dict[str, Any]) -> Profile:
    duration = schedule.get("duration")
    tx = p.get("transaction_id")
    return profile(
        id=profile_id,
        evse_id=evse_id,
        purpose=str(p["charging_profile_purpose"]),
        stack_level=int(p["stack_level"]),
        rate_unit=str(schedule["charging_rate_unit"]),
        periods=(
            Period(
                start_offset_s=int(x["start_period"]),
                limit=float(x["limit"]),
                number_phases=None if x.get("number_phases") is None else int(x["number_phases"]),
            )
            for x in schedule["charging_schedule_period"]
        ),
        start_at=_time(schedule.get("start_schedule")),
        duration_s=None if duration is None else int(duration),
        transaction_id=None if tx is None else str(tx),
        valid_from=_time(p.get("valid_from")),
        valid_to=_time(p.get("valid_to")),
    )
