"""What the controller knows live, as the API and dashboard read it: pure values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LiveSessionView:
    session_id: str
    station_id: str
    evse_id: int
    started_at: datetime
    power_w: float | None
    delivered_wh: float
    departure_at: datetime | None
    energy_requested_wh: float | None
    planned_power_w: float | None
    """What the current plan gives it now (first slot), W."""
    limited_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SitePlanView:
    site_id: str
    planned_at: datetime
    status: str
    algorithm: str
    solve_s: float
    start: datetime
    slot_s: int
    site_power_w: tuple[float, ...]
    sessions: int
    fully_served: int
    unmet_wh: float
    profiles_sent: int
    profiles_rejected: int
    violations: tuple[str, ...] = ()
