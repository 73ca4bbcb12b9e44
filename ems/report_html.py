"""The monthly site report as one self-contained HTML page with inline SVG charts. Pure: data in, text out.

``ems report --site S --month 2026-11 --out report.html`` gathers the numbers from the rollups
(``ems.storage.analytics.SqlAnalytics.site_month``) and renders them here: no scripts, no external
files, prints on A4.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
INK, ACCENT, SOFT, WARN = "#1f2937", "#2563eb", "#93c5fd", "#dc2626"


@dataclass(frozen=True, slots=True)
class SiteMonth:
    site_id: str
    site_name: str
    month: str
    timezone: str
    days: Sequence[tuple[str, float]]
    """(local day, energy kWh)."""
    load_by_weekday_hour: Mapping[tuple[int, int], float]
    """(weekday 0 = Monday, local hour) -> mean site load in kW."""
    load_curve: Sequence[tuple[str, float, float | None, float | None]]
    """(local hour label, mean load kW, capacity kW, planned kW), hourly."""
    top_users: Sequence[tuple[str, float, int]]
    """(user, energy kWh, sessions), most energy first."""
    revenue: Sequence[tuple[str, str, float, float]]
    """(local day, currency, priced, collected) in major units."""
    stations: int = 0
    hours_in_use: float = 0.0
    peak_kw: float | None = None
    peak_at: str | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def _fmt(x: float) -> str:
    return f"{x:,.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def _bars(
    values: Sequence[tuple[str, float]], *, unit: str, width: int = 860, height: int = 220, color: str = ACCENT
) -> str:
    if not values:
        return "<p class=empty>No data for this month.</p>"
    top = max(v for _, v in values) or 1.0
    left, plot_h = 56, height - 48
    step = (width - left - 10) / len(values)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="bar chart in {unit}">']
    for i in range(5):
        y = 10 + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class=axis>{_fmt(top * i / 4)}</text>')
    for i, (label, v) in enumerate(values):
        h = plot_h * v / top
        x = left + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{10 + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{html.escape(label)}: {_fmt(v)} {unit}</title></rect>"
        )
        if len(values) <= 31 and (i % max(1, len(values) // 15) == 0):
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle" class=axis>'
                f"{html.escape(label[-2:])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(cells: Mapping[tuple[int, int], float], width: int = 860) -> str:
    top = max(cells.values(), default=0.0) or 1.0
    left, cell_w, cell_h = 40, (width - 50) / 24, 22
    parts = [f'<svg viewBox="0 0 {width} {cell_h * 7 + 30}" role="img" aria-label="load by weekday and hour">']
    for d, name in enumerate(WEEKDAYS):
        parts.append(f'<text x="{left - 6}" y="{d * cell_h + 15}" text-anchor="end" class=axis>{name}</text>')
        for h in range(24):
            v = cells.get((d, h), 0.0)
            alpha = 0.06 + 0.94 * v / top
            parts.append(
                f'<rect x="{left + h * cell_w:.1f}" y="{d * cell_h}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                f'fill="{ACCENT}" fill-opacity="{alpha:.2f}"><title>{name} {h:02d}:00: {_fmt(v)} kW</title></rect>'
            )
    for h in range(0, 24, 3):
        parts.append(f'<text x="{left + h * cell_w + 2:.1f}" y="{7 * cell_h + 16}" class=axis>{h:02d}:00</text>')
    parts.append("</svg>")
    return "".join(parts)


def _lines(points: Sequence[tuple[str, float, float | None, float | None]], width: int = 860, height: int = 260) -> str:
    if not points:
        return "<p class=empty>No load measured this month.</p>"
    values = [p[1] for p in points] + [p[2] for p in points if p[2] is not None] + [p[3] for p in points if p[3]]
    top = max(values) * 1.1 or 1.0
    left, plot_w, plot_h = 56, width - 66, height - 40
    n = max(1, len(points) - 1)

    def xy(i: int, v: float) -> str:
        return f"{left + plot_w * i / n:.1f},{10 + plot_h - plot_h * v / top:.1f}"

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="load against capacity">']
    for i in range(5):
        y = 10 + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class=axis>{_fmt(top * i / 4)}</text>')
    load = " ".join(xy(i, p[1]) for i, p in enumerate(points))
    parts.append(
        f'<polygon points="{left},{10 + plot_h} {load} {left + plot_w},{10 + plot_h}" fill="{SOFT}" opacity="0.5"/>'
    )
    parts.append(f'<polyline points="{load}" fill="none" stroke="{ACCENT}" stroke-width="1.2"/>')
    for series, color, dash in (
        ([p[2] for p in points], WARN, ""),
        ([p[3] for p in points], INK, ' stroke-dasharray="4 3"'),
    ):
        style = f'fill="none" stroke="{color}"{dash} stroke-width="1.5"'
        segment: list[str] = []
        for i, v in enumerate([*series, None]):
            if v is None:
                if len(segment) > 1:
                    parts.append(f'<polyline points="{" ".join(segment)}" {style}/>')
                segment = []
            else:
                segment.append(xy(i, v))
    for i in range(0, len(points), max(1, len(points) // 8)):
        parts.append(
            f'<text x="{left + plot_w * i / n:.1f}" y="{height - 8}" text-anchor="middle" class=axis>'
            f"{html.escape(points[i][0][:10])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _hbars(rows: Sequence[tuple[str, float, int]], width: int = 860) -> str:
    if not rows:
        return "<p class=empty>No priced sessions this month.</p>"
    top = max(r[1] for r in rows) or 1.0
    bar_h, left = 24, 180
    parts = [f'<svg viewBox="0 0 {width} {bar_h * len(rows) + 6}" role="img" aria-label="top users by energy">']
    for i, (user, kwh, sessions) in enumerate(rows):
        w = (width - left - 140) * kwh / top
        y = i * bar_h + 3
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(user[:24])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 6}" fill="{ACCENT}"/>')
        parts.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" class=axis>{_fmt(kwh)} kWh, {sessions} sessions</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """\
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2937}
body{max-width:920px;margin:24px auto;padding:0 16px}
h1{font-size:24px;margin:0} h2{font-size:16px;margin:28px 0 6px} .sub{color:#6b7280;margin:2px 0 16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:10px}
.tile{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px} .tile b{display:block;font-size:18px}
svg{width:100%;height:auto;font-size:11px} .axis{fill:#6b7280;font-size:10px} .empty{color:#6b7280}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}
@media print{body{margin:0} h2{break-after:avoid} svg{break-inside:avoid}}
"""

_LEGEND = (
    f'<p class=legend><span><i class=sw style="background:{ACCENT}"></i>measured load</span>'
    f'<span><i class=sw style="background:{WARN}"></i>capacity in force</span>'
    f'<span><i class=sw style="background:{INK}"></i>planned (dashed)</span></p>'
)


def render(data: SiteMonth) -> str:
    total_kwh = sum(v for _, v in data.days)
    currencies = sorted({c for _, c, _, _ in data.revenue})
    revenue_totals = {
        c: (sum(p for _, cc, p, _ in data.revenue if cc == c), sum(k for _, cc, _, k in data.revenue if cc == c))
        for c in currencies
    }
    main_currency = currencies[0] if currencies else None
    revenue_days: dict[str, float] = {}
    for day, currency, priced, _ in data.revenue:
        if currency == main_currency:
            revenue_days[day] = revenue_days.get(day, 0.0) + priced
    tiles = [
        ("Energy delivered", f"{_fmt(total_kwh)} kWh"),
        ("Hours in use", f"{_fmt(data.hours_in_use)} h"),
        ("Peak load", f"{_fmt(data.peak_kw)} kW" if data.peak_kw is not None else "-"),
        *((f"Revenue ({c})", f"{_fmt(p)} priced / {_fmt(k)} collected") for c, (p, k) in revenue_totals.items()),
    ]
    title = f"{data.site_name or data.site_id}: {data.month}"
    revenue_title = f" ({html.escape(main_currency)}, priced)" if main_currency else ""
    revenue_chart = _bars(sorted(revenue_days.items()), unit=main_currency or "", color="#059669")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
{_CSS}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class=sub>Monthly site report, site-local days ({html.escape(data.timezone)}); {data.stations} stations.</p>
<div class=tiles>{"".join(f"<div class=tile>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in tiles)}</div>
<h2>Energy per day (kWh)</h2>{_bars(data.days, unit="kWh")}
<h2>Utilisation: mean load by weekday and hour (kW)</h2>{_heatmap(data.load_by_weekday_hour)}
<h2>Load against capacity (hourly means, kW)</h2>
{_LEGEND}
{_lines(data.load_curve)}
<h2>Top users by energy</h2>{_hbars(data.top_users)}
<h2>Revenue per day{revenue_title}</h2>{revenue_chart}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""
