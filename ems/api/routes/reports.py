"""Operator reports: per-station daily hours in use, energy delivered, fees collected."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ems.api.auth import Analyst, Services
from ems.api.billing_support import BillingDep
from ems.billing.report import daily_report
from ems.errors import InvalidInput

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

MAX_DAYS = 366
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2199, 12, 31)
"""Report dates are bounded: a day either side must still be a date (``date.max`` plus a day overflows)."""


class StationDayPublic(BaseModel):
    station_id: str
    date: date
    sessions: int
    hours_in_use: str
    energy_wh: str
    fees_priced: dict[str, str]
    fees_collected: dict[str, str]


@router.get("/station-daily", summary="Per station and site-local day: hours in use, energy, fees")
async def station_daily(
    billing: BillingDep,
    services: Services,
    _: Analyst,
    first: Annotated[date, Query(alias="from", ge=MIN_DATE, le=MAX_DATE, description="2000-01-01 to 2199-12-31")],
    last: Annotated[date, Query(alias="to", ge=MIN_DATE, le=MAX_DATE, description="2000-01-01 to 2199-12-31")],
    station_id: Annotated[str | None, Query(max_length=48)] = None,
) -> list[StationDayPublic]:
    if last < first or (last - first).days >= MAX_DAYS:
        raise InvalidInput("bad date range", [f"from/to: want from <= to and at most {MAX_DAYS} days"])
    if services.analytics is not None:  # from the rollups
        return [StationDayPublic(**row) for row in await services.analytics.station_daily(first, last, station_id)]
    service = billing.service
    policy = service.policy
    timezones = {s.id: policy.timezone_of(policy.site_of(s.id, s.site_id)) for s in await service.stations.all()}
    # A local day lies within a day either side of the UTC day: fetch wide, then bucket in local time.
    since = datetime.combine(first - timedelta(days=1), time(), tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=2), time(), tzinfo=UTC)
    costs = await service.billing.costs.query(station_id=station_id, since=since, until=until, limit=1_000_000)
    rows = daily_report(
        costs,
        timezone_of=lambda s: timezones.get(s, policy.timezone_of(policy.site_of(s, None))),
        first=first,
        last=last,
    )
    return [
        StationDayPublic(
            station_id=r.station_id,
            date=r.day,
            sessions=r.sessions,
            hours_in_use=str(r.hours_in_use),
            energy_wh=str(r.energy_wh),
            fees_priced={c: m.as_str() for c, m in r.priced.items()},
            fees_collected={c: m.as_str() for c, m in r.collected.items()},
        )
        for r in rows
    ]
