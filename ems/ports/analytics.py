"""What the API reads for analytics: answered from the rollups (``ems.storage.analytics``).

Rows are plain JSON-ready mappings (str, int, float, None, nested mappings), so the API can
answer JSON or CSV without knowing the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

AnalyticsRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionFilter:
    site_id: str | None = None
    station_id: str | None = None
    user_id: str | None = None
    card_uid: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[AnalyticsRow]
    next_cursor: str | None


class AnalyticsQueries(Protocol):
    async def sessions(self, where: SessionFilter, *, cursor: str | None, limit: int) -> Page:
        """Newest first; ``cursor`` from the previous page (raises ``InvalidInput`` if malformed)."""

    async def station_days(self, site_id: str, first: date, last: date) -> list[AnalyticsRow]:
        """Per station and site-local day in ``first .. last``."""

    async def load_curve(self, site_id: str, since: datetime, until: datetime, step_s: int) -> list[AnalyticsRow]:
        """Measured load per phase and total, capacity in force and planned load per ``step_s``."""

    async def load_curve_json(self, site_id: str, since: datetime, until: datetime, step_s: int) -> str:
        """``load_curve``'s rows as a JSON array (made by the database where it can: a month of
        15-minute rows is thousands of objects that Python would build one by one)."""

    async def load_curve_csv(self, site_id: str, since: datetime, until: datetime, step_s: int) -> str:
        """``load_curve``'s rows as CSV, as ``ems.csv_rows.csv_text`` writes them (made by the
        database where it can)."""

    async def user_months(self, user_id: str) -> list[AnalyticsRow]: ...

    async def site_peaks(self, site_id: str, first: date, last: date) -> list[AnalyticsRow]:
        """The highest 5-minute load per site-local month from ``first``'s month to ``last``'s."""

    async def station_daily(self, first: date, last: date, station_id: str | None) -> list[AnalyticsRow]:
        """The operator's station-daily report (priced sessions by the local day they started)."""


class PlanLog(Protocol):
    """Where the controller's plans and the capacity in force are recorded, per site and 5-minute bucket."""

    async def record_plan(self, site_id: str, planned_w: Sequence[tuple[int, float]], at: datetime) -> None:
        """(bucket start in epoch seconds, planned site power): the newest plan for a bucket wins."""

    async def record_capacity(self, site_id: str, bucket_s: int, capacity_w: float, at: datetime) -> None:
        """The capacity in force seen during the bucket (the lowest seen is kept)."""
