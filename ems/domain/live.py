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
    attempted_at: datetime | None = None
    """When the last re-plan was attempted; ``status`` and ``error`` are that attempt's."""
    error: str | None = None
    left_out: tuple[str, ...] = ()
    """Sessions the last attempt left out of the plan, each with why (``session: reason``)."""


@dataclass(frozen=True, slots=True)
class EvseLimitView:
    """What an EVSE will apply now by what its station accepted (the most it may apply, when unsure)."""

    station_id: str
    evse_id: int
    online: bool
    transaction_id: str | None
    accepted_current_a: float
    """A per phase the station applies now (TxProfile, TxDefaultProfile and station maximum composed)."""
    accepted_power_w: float
    certain: bool
    """False while a profile is unanswered or was lost (timeout, link down): then the higher is shown."""
    pending_current_a: tuple[float, ...] = ()
    """What the unanswered profiles would apply now."""
