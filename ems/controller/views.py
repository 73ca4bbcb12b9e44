"""What the controller shows the API and the dashboard (pure: from its state to plain views)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ems.controller.belief import EvseBelief
from ems.controller.budget import EvsePlace
from ems.controller.planning import PlanningSettings
from ems.controller.state import LiveSession
from ems.domain import composite
from ems.domain.live import EvseLimitView, LiveSessionView, SitePlanView
from ems.optimizer.schedule import Schedule


@dataclass(frozen=True, slots=True)
class PlanRecord:
    site_id: str
    planned_at: datetime
    schedule: Schedule
    profiles_sent: int
    profiles_rejected: int


@dataclass(frozen=True, slots=True)
class PlanAttempt:
    """The last re-plan attempt of a site, whether or not it produced a plan."""

    site_id: str
    at: datetime
    status: str
    """The schedule's status (OPTIMAL, FEASIBLE, FALLBACK, ERROR), or ERROR when no plan came out."""
    error: str | None = None
    left_out: tuple[str, ...] = ()


def live_sessions(active: Iterable[LiveSession], record: PlanRecord | None) -> list[LiveSessionView]:
    out: list[LiveSessionView] = []
    for s in sorted(active, key=lambda x: x.started_at):
        planned: float | None = None
        limited: tuple[str, ...] = ()
        if record is not None and s.session_id in record.schedule.session_ids:
            i = record.schedule.session_ids.index(s.session_id)
            planned = float(record.schedule.power_w[i][0])
            limited = record.schedule.limited_by[i]
        out.append(
            LiveSessionView(
                session_id=s.session_id,
                station_id=s.station_id,
                evse_id=s.evse_id,
                started_at=s.started_at,
                power_w=s.power_w,
                delivered_wh=s.delivered_wh,
                departure_at=s.departure_at,
                energy_requested_wh=s.energy_requested_wh,
                planned_power_w=planned,
                limited_by=limited,
            )
        )
    return out


def plan_view(
    site_id: str, record: PlanRecord | None, attempt: PlanAttempt | None, planning: PlanningSettings
) -> SitePlanView | None:
    """The plan in force, with the status, error and time of the LAST ATTEMPT (which may have failed)."""
    if record is None:
        if attempt is None:
            return None
        return SitePlanView(
            site_id=site_id,
            planned_at=attempt.at,
            status=attempt.status,
            algorithm="",
            solve_s=0.0,
            start=attempt.at,
            slot_s=planning.slot_s,
            site_power_w=(),
            sessions=0,
            fully_served=0,
            unmet_wh=0.0,
            profiles_sent=0,
            profiles_rejected=0,
            attempted_at=attempt.at,
            error=attempt.error,
            left_out=attempt.left_out,
        )
    sch = record.schedule
    return SitePlanView(
        site_id=site_id,
        planned_at=record.planned_at,
        status=attempt.status if attempt is not None else sch.status.value,
        algorithm=sch.algorithm.value,
        solve_s=sch.solve_s,
        start=sch.start,
        slot_s=sch.slot_s,
        site_power_w=tuple(float(v) for v in sch.site_power_w),
        sessions=len(sch.session_ids),
        fully_served=sch.fully_served(),
        unmet_wh=float(sch.unmet_wh.sum()),
        profiles_sent=record.profiles_sent,
        profiles_rejected=record.profiles_rejected,
        violations=tuple(v.message for v in sch.violations),
        attempted_at=attempt.at if attempt is not None else record.planned_at,
        error=attempt.error if attempt is not None else None,
        left_out=attempt.left_out if attempt is not None else (),
    )


def evse_limits(
    beliefs: Mapping[tuple[str, int], EvseBelief],
    places: Mapping[tuple[str, int], EvsePlace],
    now: datetime,
    online: Callable[[str], bool],
) -> list[EvseLimitView]:
    out: list[EvseLimitView] = []
    for key, b in beliefs.items():
        place = places[key]
        amps, phases = b.bound(now).at(now)
        pending: list[float] = []
        for p in b.in_flight.values():
            if p.purpose == composite.TX and p.transaction_id not in (None, b.tx_id):
                continue
            period = p.period_at(now, b.tx_started_at or now)
            if period is not None:
                pending.append(round(composite.amps(period, p.rate_unit, b.hw), 1))
        out.append(
            EvseLimitView(
                station_id=key[0],
                evse_id=key[1],
                online=online(key[0]),
                transaction_id=b.tx_id,
                accepted_current_a=amps,
                accepted_power_w=amps * place.voltage_v * min(phases, len(place.phase_map)),
                certain=b.certain(),
                pending_current_a=tuple(pending),
            )
        )
    return out
