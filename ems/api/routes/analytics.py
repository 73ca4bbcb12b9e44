"""Analytics for analysts and managers, answered from the rollups: sessions, station days, load
curves, users per month, peaks. JSON, or CSV with ``Accept: text/csv`` or ``?format=csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from ems.api.auth import Analyst, Services
from ems.api.openapi import problem
from ems.csv_rows import csv_text
from ems.errors import InvalidInput, NotAvailable
from ems.ports.analytics import AnalyticsQueries, SessionFilter

router = APIRouter(tags=["analytics"])

MAX_DAYS = 366
MAX_POINTS = 20_000
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2199, 12, 31)
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv: the same rows as CSV (or Accept: text/csv)")]
Day = Annotated[date, Query(ge=MIN_DATE, le=MAX_DATE, description="2000-01-01 to 2199-12-31, site-local")]
Id = Annotated[str, Path(min_length=1, max_length=64)]
NOT_ENABLED = problem("analytics are not enabled in this process")
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows as JSON, or as CSV (`Accept: text/csv` or `?format=csv`)",
        "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
    },
    501: NOT_ENABLED,
}


def _analytics(services: Any) -> AnalyticsQueries:
    found: AnalyticsQueries | None = services.analytics
    if found is None:
        raise NotAvailable("analytics are not enabled in this process")
    return found


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _csv(rows: Sequence[Mapping[str, Any]], headers: Mapping[str, str] | None = None) -> Response:
    return _csv_answer(csv_text(rows), headers)


def _csv_answer(text: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8", headers=dict(headers or {}))


def _answer(request: Request, fmt: str | None, rows: Sequence[Mapping[str, Any]]) -> Response:
    if _wants_csv(request, fmt):
        return _csv(rows)
    return JSONResponse(list(rows))


def _days(first: date, last: date) -> None:
    if last < first or (last - first).days >= MAX_DAYS:
        raise InvalidInput("bad date range", [f"from/to: want from <= to and at most {MAX_DAYS} days"])


def _site(services: Any, site_id: str, field: str = "site") -> None:
    """422 naming ``field`` (the query's ``site`` or the path's ``site_id``) when the site is unknown."""
    if services.site(site_id) is None:
        raise InvalidInput("unknown site", [f"{field}: no site {site_id!r}"])


@router.get(
    "/api/v1/sessions",
    summary="Sessions, newest first, with filters and cursor pagination",
    responses=ANSWERS,
)
async def list_sessions(
    request: Request,
    services: Services,
    _: Analyst,
    site: Annotated[str | None, Query(max_length=64)] = None,
    station: Annotated[str | None, Query(max_length=48)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    card: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[Literal["active", "completed"] | None, Query()] = None,
    since: Annotated[
        datetime | None, Query(alias="from", description="started at or after (ISO 8601 with offset)")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="started before")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Format = None,
) -> Response:
    problems = [f"{name}: give a UTC offset" for name, t in (("from", since), ("to", until)) if t and t.tzinfo is None]
    if since and until and since.tzinfo and until.tzinfo and until <= since:
        problems.append("from/to: want from < to")
    if problems:
        raise InvalidInput("bad query", problems)
    where = SessionFilter(site, station, user, card, status, since, until)
    page = await _analytics(services).sessions(where, cursor=cursor, limit=limit)
    if _wants_csv(request, format):
        return _csv(page.rows, {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None)
    return JSONResponse({"items": list(page.rows), "next_cursor": page.next_cursor})


@router.get(
    "/api/v1/analytics/station-days",
    summary="Per station and site-local day: energy, hours in use, peak, sessions, fees",
    responses=ANSWERS,
)
async def station_days(
    request: Request,
    services: Services,
    _: Analyst,
    site: Annotated[str, Query(min_length=1, max_length=64)],
    first: Annotated[Day, Query(alias="from")],
    last: Annotated[Day, Query(alias="to")],
    format: Format = None,
) -> Response:
    _days(first, last)
    _site(services, site)
    return _answer(request, format, await _analytics(services).station_days(site, first, last))


@router.get(
    "/api/v1/sites/{site_id}/load",
    summary="Load curve: measured per phase and total, capacity in force, planned",
    responses=ANSWERS,
)
async def load_curve(
    request: Request,
    services: Services,
    _: Analyst,
    site_id: Id,
    since: Annotated[datetime, Query(alias="from", description="ISO 8601 with offset")],
    until: Annotated[datetime, Query(alias="to", description="ISO 8601 with offset")],
    step_s: Annotated[int, Query(ge=300, le=86_400 * 31, description="a multiple of 300")] = 900,
    format: Format = None,
) -> Response:
    problems = [f"{name}: give a UTC offset" for name, t in (("from", since), ("to", until)) if t.tzinfo is None]
    if step_s % 300:
        problems.append("step_s: must be a multiple of 300 (the 5-minute rollup)")
    if not problems:
        if until <= since or until - since > timedelta(days=MAX_DAYS):
            problems.append(f"from/to: want from < to and at most {MAX_DAYS} days")
        elif (until - since).total_seconds() / step_s > MAX_POINTS:
            problems.append(f"step_s: at most {MAX_POINTS} points per request; take a longer step")
    if problems:
        raise InvalidInput("bad query", problems)
    _site(services, site_id, "site_id")
    analytics, window = _analytics(services), (site_id, since.astimezone(UTC), until.astimezone(UTC), step_s)
    if _wants_csv(request, format):
        return _csv_answer(await analytics.load_curve_csv(*window))
    return Response(await analytics.load_curve_json(*window), media_type="application/json")


@router.get(
    "/api/v1/sites/{site_id}/peaks",
    summary="The highest 5-minute load per site-local month",
    responses=ANSWERS,
)
async def site_peaks(
    request: Request,
    services: Services,
    _: Analyst,
    site_id: Id,
    first: Annotated[Day, Query(alias="from")],
    last: Annotated[Day, Query(alias="to")],
    format: Format = None,
) -> Response:
    if last < first or (last - first).days > 3 * MAX_DAYS:
        raise InvalidInput("bad date range", ["from/to: want from <= to and at most three years"])
    _site(services, site_id, "site_id")
    return _answer(request, format, await _analytics(services).site_peaks(site_id, first, last))


@router.get(
    "/api/v1/analytics/users/{user_id}/months",
    summary="A user's priced sessions per site-local month and currency",
    responses=ANSWERS,
)
async def user_months(
    request: Request,
    services: Services,
    _: Analyst,
    user_id: Id,
    format: Format = None,
) -> Response:
    return _answer(request, format, await _analytics(services).user_months(user_id))
