"""What is happening now: measured load per phase, active sessions, and the plan in force."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from ems.api.auth import Analyst, Services
from ems.api.openapi import problem
from ems.errors import NotAvailable, NotFound

router = APIRouter(prefix="/api/v1/sites", tags=["live"])


class LiveSessionPublic(BaseModel):
    session_id: str
    station_id: str
    evse_id: int
    started_at: datetime
    power_w: float | None
    delivered_wh: float
    departure_at: datetime | None
    energy_requested_wh: float | None
    planned_power_w: float | None
    limited_by: list[str]


class PlanPublic(BaseModel):
    planned_at: datetime
    status: str
    algorithm: str
    solve_ms: float
    start: datetime
    slot_s: int
    site_power_w: list[float]
    sessions: int
    fully_served: int
    unmet_wh: float
    profiles_sent: int
    profiles_rejected: int
    violations: list[str]
    attempted_at: datetime | None
    """The last re-plan attempt; ``status`` and ``error`` are that attempt's (``planned_at``: the plan in force)."""
    age_s: float | None
    """Seconds since the last attempt."""
    error: str | None
    left_out: list[str]
    """Sessions the last attempt left out of the plan, each with why."""


class EvseLimitPublic(BaseModel):
    station_id: str
    evse_id: int
    online: bool
    transaction_id: str | None
    accepted_current_a: float
    """A per phase the station applies now, by the profiles it accepted."""
    accepted_power_w: float
    certain: bool
    """False while a profile is unanswered or its answer was lost (then the higher limit is shown)."""
    pending_current_a: list[float]


class LivePublic(BaseModel):
    site_id: str
    measured_power_w: float | None
    phase_power_w: dict[str, float]
    phase_current_a: dict[str, float]
    measured_at: datetime | None
    active_sessions: int
    planned_power_w: float | None
    """What the plan in force gives the site's sessions now (its first slot)."""
    accepted_power_w: float
    """What the stations may apply now, by the profiles they accepted (EVSEs of connected-since-start stations)."""
    sessions: list[LiveSessionPublic]
    evses: list[EvseLimitPublic]
    plan: PlanPublic | None


@router.get(
    "/{site_id}/live",
    summary="Measured load, active sessions and the charging plan in force",
    responses={501: problem("no controller runs in this process")},
)
async def live(site_id: str, services: Services, _: Analyst) -> LivePublic:
    if services.site(site_id) is None:
        raise NotFound(f"no site {site_id!r}")
    monitor = services.monitor
    if monitor is None:
        raise NotAvailable("no controller runs in this process")
    load = monitor.site_load(site_id)
    plan = monitor.plan(site_id)
    evses = monitor.evse_limits(site_id)
    now = services.clock.now()
    return LivePublic(
        site_id=site_id,
        measured_power_w=load.power_w,
        phase_power_w={str(p): w for p, w in load.phase_power_w.items()},
        phase_current_a={str(p): a for p, a in load.phase_current_a.items()},
        measured_at=load.measured_at,
        active_sessions=load.active_sessions,
        planned_power_w=plan.site_power_w[0] if plan is not None and plan.site_power_w else None,
        accepted_power_w=sum(e.accepted_power_w for e in evses),
        evses=[
            EvseLimitPublic(
                station_id=e.station_id,
                evse_id=e.evse_id,
                online=e.online,
                transaction_id=e.transaction_id,
                accepted_current_a=e.accepted_current_a,
                accepted_power_w=e.accepted_power_w,
                certain=e.certain,
                pending_current_a=list(e.pending_current_a),
            )
            for e in evses
        ],
        sessions=[
            LiveSessionPublic(
                session_id=s.session_id,
                station_id=s.station_id,
                evse_id=s.evse_id,
                started_at=s.started_at,
                power_w=s.power_w,
                delivered_wh=s.delivered_wh,
                departure_at=s.departure_at,
                energy_requested_wh=s.energy_requested_wh,
                planned_power_w=s.planned_power_w,
                limited_by=list(s.limited_by),
            )
            for s in monitor.live_sessions(site_id)
        ],
        plan=None
        if plan is None
        else PlanPublic(
            planned_at=plan.planned_at,
            status=plan.status,
            algorithm=plan.algorithm,
            solve_ms=plan.solve_s * 1000,
            start=plan.start,
            slot_s=plan.slot_s,
            site_power_w=list(plan.site_power_w),
            sessions=plan.sessions,
            fully_served=plan.fully_served,
            unmet_wh=plan.unmet_wh,
            profiles_sent=plan.profiles_sent,
            profiles_rejected=plan.profiles_rejected,
            violations=list(plan.violations),
            attempted_at=plan.attempted_at,
            age_s=None if plan.attempted_at is None else (now - plan.attempted_at).total_seconds(),
            error=plan.error,
            left_out=list(plan.left_out),
        ),
    )
