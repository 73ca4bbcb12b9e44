"""Charging profiles as a simulated station holds them, and the limit they impose (pure).

Stacking (OCPP 1.6 §3.13 / 2.0.1 K01): per purpose, the valid profile with the highest
stack level wins; the EVSE limit is min(station max profile, TxProfile if one is installed
for the running transaction, else TxDefaultProfile). Limits in A convert to W at 230 V
per phase on ``number_phases`` (default 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ems.domain.units import NOMINAL_VOLTAGE_V, power_w_from_current_a
from ems.sim.wire import parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_PURPOSES = frozenset({"ChargePointMaxProfile", "ChargingStationMaxProfile"})


@dataclass(frozen=True, slots=True)
class Period:
    start_offset_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    evse_id: int
    purpose: str
    stack_level: int
    rate_unit: str
    periods: tuple[Period, ...]
    start_at: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None

    def limit_w_at(self, now: datetime, relative_start: datetime, default_phases: int = 3) -> float | None:
        """The limit in W at ``now``; ``None`` when not in effect. A relative schedule starts at ``relative_start``."""
        start = self.start_at or relative_start
        elapsed = (now - start).total_seconds()
        if elapsed < 0 or (self.duration_s is not None and elapsed >= self.duration_s):
            return None
        current: Period | None = None
        for p in sorted(self.periods, key=lambda p: p.start_offset_s):
            if p.start_offset_s <= elapsed:
                current = p
        if current is None:
            return None
        if self.rate_unit == "A":
            phases = current.number_phases or default_phases
            return power_w_from_current_a(current.limit, NOMINAL_VOLTAGE_V, phases)
        return current.limit


def _winner(profiles: Iterable[Profile], now: datetime, since: datetime) -> float | None:
    best: tuple[int, float] | None = None
    for p in profiles:
        limit = p.limit_w_at(now, since)
        if limit is not None and (best is None or p.stack_level > best[0]):
            best = (p.stack_level, limit)
    return None if best is None else best[1]


def effective_limit_w(
    profiles: Iterable[Profile], *, evse_id: int, now: datetime, tx_id: str | None, tx_started_at: datetime | None
) -> float | None:
    """The EVSE's limit in W at ``now``; ``None``: no profile limits it."""
    mine = [p for p in profiles if p.evse_id in (0, evse_id)]
    since = tx_started_at or now
    station_max = _winner((p for p in mine if p.purpose in MAX_PURPOSES), now, since)
    tx = _winner(
        (p for p in mine if p.purpose == "TxProfile" and tx_id is not None and p.transaction_id in (None, tx_id)),
        now,
        since,
    )
    if tx is None:
        tx = _winner((p for p in mine if p.purpose == "TxDefaultProfile"), now, since)
    limits = [x for x in (station_max, tx) if x is not None]
    return min(limits) if limits else None


def profile_from_v16(connector_id: int, p: dict[str, Any]) -> Profile:
    """A 1.6 ``csChargingProfiles`` as the library hands it to a handler (snake_case keys)."""
    return _profile(int(p["charging_profile_id"]), connector_id, p, p["charging_schedule"])


def profile_from_v201(evse_id: int, p: dict[str, Any]) -> Profile:
    """A 2.0.1 ``chargingProfile`` (snake_case keys); the first schedule is the one in use."""
    return _profile(int(p["id"]), evse_id, p, p["charging_schedule"][0])


def _profile(profile_id: int, evse_id: int, p: dict[str, Any], schedule: dict[str, Any]) -> Profile:
    start = schedule.get("start_schedule")
    duration = schedule.get("duration")
    tx = p.get("transaction_id")
    return Profile(
        id=profile_id,
        evse_id=evse_id,
        purpose=str(p["charging_profile_purpose"]),
        stack_level=int(p["stack_level"]),
        rate_unit=str(schedule["charging_rate_unit"]),
        periods=tuple(
            Period(
                start_offset_s=int(x["start_period"]),
                limit=float(x["limit"]),
                number_phases=None if x.get("number_phases") is None else int(x["number_phases"]),
            )
            for x in schedule["charging_schedule_period"]
        ),
        start_at=parse_time(start, EPOCH) if isinstance(start, str) else None,
        duration_s=None if duration is None else int(duration),
        transaction_id=None if tx is None else str(tx),
    )
