"""Analytics queries, answered from the rollups only (``ems.storage.rollups``) - except the
session list, which reads ``sessions`` with its cost through indexed, keyset-paginated SQL."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ems.csv_rows import csv_text
from ems.domain.money import Money, minor_str
from ems.errors import InvalidInput
from ems.ports.analytics import AnalyticsRow, Page, SessionFilter
from ems.report_html import SiteMonth
from ems.storage.db import Database
from ems.storage.rollup_rules import BUCKET_S, EPOCH, at_of
from ems.storage.rollups import DEFAULT_STATION


def _wh(mwh: Any) -> str:
    return str(Decimal(int(mwh)) / 1000)


def _hours(us: Any) -> str:
    return str((Decimal(int(us)) / 3_600_000_000).quantize(Decimal("0.01")))


def _epoch_s(at: datetime) -> int:
    return (at - EPOCH) // timedelta(seconds=1)


def _iso_utc(epoch_s: int, days: dict[int, str]) -> str:
    """``at_of(epoch_s).isoformat()`` for a whole second, with the date part cached in ``days``
    (a month of 5-minute rows: 8,640 datetimes made and formatted cost ~30 ms here)."""
    day, second = divmod(epoch_s, 86_400)
    date_part = days.get(day)
    if date_part is None:
        date_part = days[day] = at_of(day * 86_400).date().isoformat()
    hours, rest = divmod(second, 3600)
    return f"{date_part}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}+00:00"


def _money(minor: Any, currency: str) -> str:
    return minor_str(int(minor), currency)


_F = "CAST({} AS DOUBLE PRECISION)"
_SITE_ROWS = (
    "SELECT (bucket_s / ?) * ? AS t, {} FROM rollup_site_5min WHERE site_id = ? AND bucket_s >= ? AND bucket_s < ?"
)
_MEASURED_GROUPED = (
    # Means and sums computed in SQL as floats (PostgreSQL's numeric avg of bigint is slow to make and to read).
    f"SELECT t, avg({_F.format('load_mw')}) / 1000 AS load_w, avg({_F.format('l1_mw')}) / 1000 AS l1_w, "
    f"avg({_F.format('l2_mw')}) / 1000 AS l2_w, avg({_F.format('l3_mw')}) / 1000 AS l3_w, "
    f"max({_F.format('load_mw')}) / 1000 AS peak_w, sum({_F.format('energy_mwh')}) / 1000 AS energy_wh FROM ("
    + _SITE_ROWS.format("load_mw, l1_mw, l2_mw, l3_mw, energy_mwh")
    + ") q GROUP BY t"
)
_MEASURED_BUCKETS = _SITE_ROWS.format(
    # One row per site and bucket (the key): the mean, peak and sum of one value are that value.
    f"{_F.format('load_mw')} / 1000 AS load_w, {_F.format('l1_mw')} / 1000 AS l1_w, "
    f"{_F.format('l2_mw')} / 1000 AS l2_w, {_F.format('l3_mw')} / 1000 AS l3_w, "
    f"{_F.format('load_mw')} / 1000 AS peak_w, {_F.format('energy_mwh')} / 1000 AS energy_wh"
)
_PLANNED_BUCKETS = (
    "SELECT (bucket_s / ?) * ? AS t, planned_w, capacity_w FROM analytics_site_plan "
    "WHERE site_id = ? AND bucket_s >= ? AND bucket_s < ?"
)
_PLANNED_GROUPED = (
    f"SELECT t, avg(planned_w) AS planned_w, min(capacity_w) AS capacity_w FROM ({_PLANNED_BUCKETS}) q GROUP BY t"
)


def _curve_sql(step_s: int, *, grouped: bool = False) -> tuple[str, str]:
    """The measured site load and the planned load with the capacity in force, per ``step_s``
    (parameters: ``_curve_params``). At the rollup's own step every group is one row (both tables
    are keyed by site and bucket), so the rows are read as they are (a month of 5-minute rows:
    two hash aggregates of 8,640 groups saved); ``grouped`` asks for the general form anyway."""
    if step_s == BUCKET_S and not grouped:
        return _MEASURED_BUCKETS, _PLANNED_BUCKETS
    return _MEASURED_GROUPED, _PLANNED_GROUPED


_CURVE_COLUMNS = ("start", "load_w", "l1_w", "l2_w", "l3_w", "peak_w", "energy_wh", "capacity_w", "planned_w")
"""The load curve's columns, in the order of its rows' keys."""


def _curve_params(site_id: str, since: datetime, until: datetime, step_s: int) -> tuple[Any, ...]:
    return (step_s, step_s, site_id, _epoch_s(since) // BUCKET_S * BUCKET_S, _epoch_s(until))


class SqlAnalytics:
    """Implements ``ems.ports.analytics.AnalyticsQueries``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def site_zone(self, site_id: str) -> ZoneInfo:
        row = await self._db.fetchone(
            "SELECT timezone FROM analytics_placement WHERE site_id = ? ORDER BY station_id = ? LIMIT 1",
            (site_id, DEFAULT_STATION),
        )
        return ZoneInfo(row["timezone"] if row else "UTC")

    async def _local_range(self, site_id: str, first: date, last: date) -> tuple[ZoneInfo, int, int]:
        zone = await self.site_zone(site_id)
        start = datetime.combine(first, time(), tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
        return zone, _epoch_s(start.astimezone(UTC)), _epoch_s(end.astimezone(UTC))

    # --- sessions ----------------------------------------------------------------------------

    async def sessions(self, where: SessionFilter, *, cursor: str | None, limit: int) -> Page:
        clauses: list[str] = []
        params: list[Any] = []
        if where.site_id is not None:
            clauses.append("s.station_id IN (SELECT station_id FROM analytics_placement WHERE site_id = ?)")
            params.append(where.site_id)
        if where.station_id is not None:
            clauses.append("s.station_id = ?")
            params.append(where.station_id)
        if where.user_id is not None:
            clauses.append("s.id_tag IN (SELECT uid FROM cards WHERE user_id = ?)")
            params.append(where.user_id)
        if where.card_uid is not None:
            clauses.append("s.id_tag = ?")
            params.append(where.card_uid)
        if where.status is not None:
            clauses.append("s.status = ?")
            params.append(where.status)
        if where.since is not None:
            clauses.append("s.started_at >= ?")
            params.append(where.since)
        if where.until is not None:
            clauses.append("s.started_at < ?")
            params.append(where.until)
        if cursor is not None:
            at, session_id = _decode_cursor(cursor)
            clauses.append("(s.started_at < ? OR (s.started_at = ? AND s.id < ?))")
            params.extend((at, at, session_id))
        sql = (
            "SELECT s.id, s.station_id, s.evse_id, s.connector_id, s.transaction_id, s.id_tag, s.status, "
            "s.started_at, s.stopped_at, s.stop_reason, s.energy_wh, c.currency, c.total_minor, c.captured_minor "
            "FROM sessions s LEFT JOIN session_costs c ON c.session_id = s.id"
            + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
            + " ORDER BY s.started_at DESC, s.id DESC LIMIT ?"
        )
        rows = await self._db.fetchall(sql, (*params, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        out = [
            {
                "id": r["id"],
                "station_id": r["station_id"],
                "evse_id": r["evse_id"],
                "connector_id": r["connector_id"],
                "transaction_id": r["transaction_id"],
                "card_uid": r["id_tag"],
                "status": r["status"],
                "started_at": r["started_at"].isoformat(),
                "stopped_at": r["stopped_at"].isoformat() if r["stopped_at"] else None,
                "stop_reason": r["stop_reason"],
                "energy_wh": float(r["energy_wh"]),
                "currency": r["currency"],
                "total": _money(r["total_minor"], r["currency"]) if r["currency"] else None,
                "charged": _money(r["captured_minor"], r["currency"]) if r["currency"] else None,
            }
            for r in rows
        ]
        next_cursor = _encode_cursor(rows[-1]["started_at"], rows[-1]["id"]) if more and rows else None
        return Page(out, next_cursor)

    # --- station days ------------------------------------------------------------------------

    async def station_days(self, site_id: str, first: date, last: date) -> list[AnalyticsRow]:
        days = (first.isoformat(), last.isoformat())
        usage = await self._db.fetchall(
            "SELECT station_id, day, energy_mwh, in_use_us, peak_w FROM rollup_station_day "
            "WHERE site_id = ? AND day >= ? AND day <= ?",
            (site_id, *days),
        )
        fees = await self._db.fetchall(
            "SELECT station_id, day, currency, sessions, priced_minor, collected_minor FROM rollup_station_day_fees "
            "WHERE site_id = ? AND day >= ? AND day <= ?",
            (site_id, *days),
        )
        rows: dict[tuple[str, str], AnalyticsRow] = {}

        def row(station_id: str, day: str) -> AnalyticsRow:
            found = rows.get((station_id, day))
            if found is None:
                found = rows[(station_id, day)] = {
                    "station_id": station_id,
                    "date": day,
                    "energy_wh": "0",
                    "hours_in_use": "0.00",
                    "peak_w": 0.0,
                    "sessions": 0,
                    "fees_priced": {},
                    "fees_collected": {},
                }
            return found

        for u in usage:
            r = row(u["station_id"], u["day"])
            r["energy_wh"] = _wh(u["energy_mwh"])
            r["hours_in_use"] = _hours(u["in_use_us"])
            r["peak_w"] = float(u["peak_w"])
        for f in fees:
            r = row(f["station_id"], f["day"])
            r["sessions"] += int(f["sessions"])
            r["fees_priced"][f["currency"]] = _money(f["priced_minor"], f["currency"])
            r["fees_collected"][f["currency"]] = _money(f["collected_minor"], f["currency"])
        return [rows[k] for k in sorted(rows)]

    async def station_daily(self, first: date, last: date, station_id: str | None) -> list[AnalyticsRow]:
        sql = (
            "SELECT station_id, day, currency, sessions, session_us, energy_mwh, priced_minor, collected_minor "
            "FROM rollup_station_day_fees WHERE day >= ? AND day <= ?"
        )
        params: list[Any] = [first.isoformat(), last.isoformat()]
        if station_id is not None:
            sql += " AND station_id = ?"
            params.append(station_id)
        rows: dict[tuple[str, str], AnalyticsRow] = {}
        for f in await self._db.fetchall(sql + " ORDER BY station_id, day, currency", params):
            r = rows.setdefault(
                (f["station_id"], f["day"]),
                {
                    "station_id": f["station_id"],
                    "date": f["day"],
                    "sessions": 0,
                    "session_us": 0,
                    "energy_mwh": 0,
                    "fees_priced": {},
                    "fees_collected": {},
                },
            )
            r["sessions"] += int(f["sessions"])
            r["session_us"] += int(f["session_us"])
            r["energy_mwh"] += int(f["energy_mwh"])
            r["fees_priced"][f["currency"]] = _money(f["priced_minor"], f["currency"])
            r["fees_collected"][f["currency"]] = _money(f["collected_minor"], f["currency"])
        out = []
        for key in sorted(rows):
            r = rows[key]
            out.append(
                {
                    "station_id": r["station_id"],
                    "date": r["date"],
                    "sessions": r["sessions"],
                    "hours_in_use": _hours(r["session_us"]),
                    "energy_wh": _wh(r["energy_mwh"]),
                    "fees_priced": r["fees_priced"],
                    "fees_collected": r["fees_collected"],
                }
            )
        return out

    # --- load curve and peaks ----------------------------------------------------------------

    async def load_curve(self, site_id: str, since: datetime, until: datetime, step_s: int) -> list[AnalyticsRow]:
        params = _curve_params(site_id, since, until, step_s)
        measured_sql, planned_sql = _curve_sql(step_s)
        measured = await self._db.fetchall(f"{measured_sql} ORDER BY t", params)
        planned = await self._db.fetchall(planned_sql, params)
        plans = {int(p["t"]): p for p in planned}
        days: dict[int, str] = {}
        empty = {"planned_w": None, "capacity_w": None}
        out: list[AnalyticsRow] = []
        for m in measured:
            t = int(m["t"])
            p = plans.pop(t, empty)
            out.append(
                {
                    "start": _iso_utc(t, days),
                    "load_w": m["load_w"],
                    "l1_w": m["l1_w"],
                    "l2_w": m["l2_w"],
                    "l3_w": m["l3_w"],
                    "peak_w": m["peak_w"],
                    "energy_wh": m["energy_wh"],
                    "capacity_w": p["capacity_w"],
                    "planned_w": p["planned_w"],
                }
            )
        for t, p in plans.items():  # planned where nothing was measured
            out.append(
                {
                    "start": _iso_utc(t, days),
                    "load_w": None,
                    "l1_w": None,
                    "l2_w": None,
                    "l3_w": None,
                    "peak_w": None,
                    "energy_wh": 0.0,
                    "capacity_w": p["capacity_w"],
                    "planned_w": p["planned_w"],
                }
            )
        if plans:
            out.sort(key=lambda r: r["start"])
        return out

    async def load_curve_json(self, site_id: str, since: datetime, until: datetime, step_s: int) -> str:
        if self._db.dialect.name != "postgresql":
            return json.dumps(await self.load_curve(site_id, since, until, step_s))
        # The rows of ``load_curve`` (same keys, order and values; floats printed by PostgreSQL)
        # built as JSON by the server: one text value instead of thousands of rows made into dicts.
        # json_agg of whole rows (not a json_build_object per row).
        return await self._curve_text("COALESCE(json_agg(r ORDER BY k.t), '[]')", (site_id, since, until, step_s))

    async def load_curve_csv(self, site_id: str, since: datetime, until: datetime, step_s: int) -> str:
        if self._db.dialect.name != "postgresql":
            return csv_text(await self.load_curve(site_id, since, until, step_s))
        # As ``csv_text`` writes the rows: a header line, then a line per row, each ended by CRLF; a
        # missing value is an empty cell (concat() reads NULL as ''); no rows is the empty text.
        # The cells are numbers and an ISO time, never a comma or a quote, so none is quoted.
        line = "concat_ws(',', " + ", ".join(f"concat(r.{c})" for c in _CURVE_COLUMNS) + ")"
        return await self._curve_text(
            f"COALESCE('{','.join(_CURVE_COLUMNS)}' || E'\\r\\n' "
            f"|| string_agg({line}, E'\\r\\n' ORDER BY k.t) || E'\\r\\n', '')",
            (site_id, since, until, step_s),
        )

    async def _curve_text(self, aggregate: str, window: tuple[str, datetime, datetime, int]) -> str:
        """``aggregate`` over the load curve's rows ``r`` and their times ``k.t`` (epoch seconds: the
        rows sort by it, not by the text of their start), on PostgreSQL, as one text value."""
        params = _curve_params(*window)
        measured_sql, planned_sql = _curve_sql(window[3])
        found = await self._db.fetchone(
            f"SELECT ({aggregate})::TEXT AS doc FROM ({measured_sql}) m FULL JOIN ({planned_sql}) p ON p.t = m.t "
            "CROSS JOIN LATERAL (SELECT COALESCE(m.t, p.t) AS t) k CROSS JOIN LATERAL ("
            "SELECT to_char(to_timestamp(k.t) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') AS start, "
            "m.load_w, m.l1_w, m.l2_w, m.l3_w, m.peak_w, COALESCE(m.energy_wh, 0.0) AS energy_wh, "
            "p.capacity_w, p.planned_w) r",
            (*params, *params),
        )
        return str(found["doc"]) if found else ""

    async def site_peaks(self, site_id: str, first: date, last: date) -> list[AnalyticsRow]:
        zone = await self.site_zone(site_id)
        out: list[AnalyticsRow] = []
        month = date(first.year, first.month, 1)
        while month <= last:
            following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            lo = _epoch_s(datetime.combine(month, time(), tzinfo=zone).astimezone(UTC))
            hi = _epoch_s(datetime.combine(following, time(), tzinfo=zone).astimezone(UTC))
            peak = await self._db.fetchone(
                "SELECT bucket_s, load_mw FROM rollup_site_5min WHERE site_id = ? AND bucket_s >= ? AND bucket_s < ? "
                "ORDER BY load_mw DESC, bucket_s LIMIT 1",
                (site_id, lo, hi),
            )
            out.append(
                {
                    "month": month.strftime("%Y-%m"),
                    "peak_w": int(peak["load_mw"]) / 1000 if peak else None,
                    "at": at_of(int(peak["bucket_s"])).isoformat() if peak else None,
                }
            )
            month = following
        return out

    # --- users -------------------------------------------------------------------------------

    async def user_months(self, user_id: str) -> list[AnalyticsRow]:
        rows = await self._db.fetchall(
            "SELECT month, currency, sessions, session_us, energy_mwh, priced_minor, collected_minor "
            "FROM rollup_user_month WHERE user_id = ? ORDER BY month, currency",
            (user_id,),
        )
        return [
            {
                "user_id": user_id,
                "month": r["month"],
                "currency": r["currency"],
                "sessions": int(r["sessions"]),
                "hours_charging": _hours(r["session_us"]),
                "energy_wh": _wh(r["energy_mwh"]),
                "fees_priced": _money(r["priced_minor"], r["currency"]),
                "fees_collected": _money(r["collected_minor"], r["currency"]),
            }
            for r in rows
        ]


async def site_month(analytics: SqlAnalytics, site_id: str, site_name: str, month: date) -> SiteMonth:
    """Everything the monthly site report shows, from the rollups (top users: from the priced sessions)."""
    db = analytics._db
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    last = following - timedelta(days=1)
    zone, lo, hi = await analytics._local_range(site_id, month, last)
    days = await db.fetchall(
        "SELECT day, sum(energy_mwh) AS energy_mwh, sum(in_use_us) AS in_use_us, count(*) AS stations "
        "FROM rollup_station_day WHERE site_id = ? AND day >= ? AND day <= ? GROUP BY day ORDER BY day",
        (site_id, month.isoformat(), last.isoformat()),
    )
    stations = await db.fetchone(
        "SELECT count(DISTINCT station_id) AS n FROM rollup_station_day WHERE site_id = ? AND day >= ? AND day <= ?",
        (site_id, month.isoformat(), last.isoformat()),
    )
    cells: dict[tuple[int, int], list[int]] = {}
    for r in await db.fetchall(
        "SELECT bucket_s, load_mw FROM rollup_site_5min WHERE site_id = ? AND bucket_s >= ? AND bucket_s < ?",
        (site_id, lo, hi),
    ):
        local = at_of(int(r["bucket_s"])).astimezone(zone)
        cell = cells.setdefault((local.weekday(), local.hour), [0, 0])
        cell[0] += int(r["load_mw"])
        cell[1] += 1
    curve = await analytics.load_curve(site_id, at_of(lo), at_of(hi), 3600)
    users = await db.fetchall(
        "SELECT COALESCE(u.name, a.user_id, c.user_id, sc.card_uid, 'unknown') AS who, "
        "count(*) AS sessions, sum(sc.energy_wh) AS energy_wh FROM session_costs sc "
        "LEFT JOIN billing_accounts a ON a.id = sc.account_id LEFT JOIN cards c ON c.uid = sc.card_uid "
        "LEFT JOIN billing_users u ON u.id = COALESCE(a.user_id, c.user_id) "
        "WHERE sc.station_id IN (SELECT station_id FROM analytics_placement WHERE site_id = ?) "
        "AND sc.started_at >= ? AND sc.started_at < ? GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 10",
        (site_id, at_of(lo), at_of(hi)),
    )
    fees = await db.fetchall(
        "SELECT day, currency, sum(priced_minor) AS priced, sum(collected_minor) AS collected "
        "FROM rollup_station_day_fees WHERE site_id = ? AND day >= ? AND day <= ? GROUP BY day, currency ORDER BY day",
        (site_id, month.isoformat(), last.isoformat()),
    )
    peak = (await analytics.site_peaks(site_id, month, month))[0]
    return SiteMonth(
        site_id=site_id,
        site_name=site_name,
        month=month.strftime("%Y-%m"),
        timezone=zone.key,
        days=[(r["day"], int(r["energy_mwh"]) / 1e6) for r in days],
        load_by_weekday_hour={k: v[0] / v[1] / 1e6 for k, v in cells.items()},
        load_curve=[
            (
                datetime.fromisoformat(p["start"]).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                (p["load_w"] or 0.0) / 1000,
                None if p["capacity_w"] is None else p["capacity_w"] / 1000,
                None if p["planned_w"] is None else p["planned_w"] / 1000,
            )
            for p in curve
        ],
        top_users=[(r["who"], float(r["energy_wh"]) / 1000, int(r["sessions"])) for r in users],
        revenue=[
            (
                r["day"],
                r["currency"],
                float(Money.from_minor(int(r["priced"]), r["currency"]).amount),
                float(Money.from_minor(int(r["collected"]), r["currency"]).amount),
            )
            for r in fees
        ],
        stations=int(stations["n"]) if stations else 0,
        hours_in_use=sum(int(r["in_use_us"]) for r in days) / 3.6e9,
        peak_kw=None if peak["peak_w"] is None else peak["peak_w"] / 1000,
        peak_at=peak["at"],
    )


def _encode_cursor(at: datetime, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{session_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, session_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        parsed = datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput("bad cursor", ["cursor: not a cursor this API returned"]) from error
    if parsed.tzinfo is None:
        raise InvalidInput("bad cursor", ["cursor: not a cursor this API returned"])
    return parsed, session_id
