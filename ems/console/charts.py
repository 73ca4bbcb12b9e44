"""Line charts as inline SVG, drawn on the server: axes with units, time ticks in the site's zone.

Pure: values in, markup out. Every series is a step line (a value holds until the next point);
``None`` breaks the line. The chart scales to its container (``viewBox``, width 100 %).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 720.0, 300.0
LEFT, RIGHT, TOP, BOTTOM = 66.0, 14.0, 14.0, 56.0


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[tuple[datetime, float | None]]
    """(time, value), in time order; the last point's value holds until ``Chart.end``."""
    color: str
    dashed: bool = False
    width: float = 2.0
    """Stroke width; series that may coincide get different widths so that each stays visible."""


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    unit: str
    start: datetime
    end: datetime
    timezone: str
    series: Sequence[Series] = field(default_factory=tuple)
    now: datetime | None = None
    """Drawn as a vertical line labelled "now"."""


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 x 10^n) giving about ``target_ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.1f}"


def render(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (role=img, titled), with a legend below."""
    drawn = [s for s in chart.series if any(v is not None for _, v in s.points)]
    values = [v for s in drawn for _, v in s.points if v is not None]
    top = max([*values, 0.0]) * 1.1 or 1.0
    step = nice_step(top)
    top = math.ceil(top / step) * step
    span_s = max((chart.end - chart.start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: datetime) -> float:
        return LEFT + plot_w * min(max((t - chart.start).total_seconds() / span_s, 0.0), 1.0)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        f'aria-label="{html.escape(chart.title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{html.escape(chart.title)}</title>",
    ]
    # y axis: gridlines and labels in the unit
    tick = 0.0
    while tick <= top + step / 2:
        yy = y(tick)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
        tick += step
    out.append(
        f'<text class="axis-label" x="22" y="{TOP + plot_h / 2:.0f}" '
        f'transform="rotate(-90 22 {TOP + plot_h / 2:.0f})" text-anchor="middle">{html.escape(chart.unit)}</text>'
    )
    # x axis: local hours in the site's zone
    zone = ZoneInfo(chart.timezone)
    hours = span_s / 3600
    every_h = next(h for h in (1, 2, 3, 4, 6, 12, 24, 48) if hours / h <= 6)
    local_start = chart.start.astimezone(zone)
    t = local_start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while t.astimezone(zone).hour % every_h:
        t += timedelta(hours=1)
    while t <= chart.end:
        xx = x(t)
        label = t.astimezone(zone).strftime("%H:%M" if every_h < 24 else "%d %b")
        out.append(f'<line class="grid" x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        out.append(f'<text class="tick" x="{xx:.1f}" y="{TOP + plot_h + 22}" text-anchor="middle">{label}</text>')
        t += timedelta(hours=every_h)
    zone_name = local_start.strftime("%Z") or chart.timezone
    out.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">'
        f"time ({html.escape(chart.timezone)}, {html.escape(zone_name)})</text>"
    )
    out.append(f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w:.1f}" height="{plot_h:.1f}" fill="none"/>')
    for series in drawn:
        for path in _paths(series, chart.end, x, y):
            dash = ' stroke-dasharray="6 4"' if series.dashed else ""
            out.append(f'<path d="{path}" fill="none" stroke="{series.color}" stroke-width="{series.width:g}"{dash}/>')
    if chart.now is not None and chart.start <= chart.now <= chart.end:
        xx = x(chart.now)
        out.append(f'<line class="now" x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        out.append(f'<text class="tick" x="{xx + 4:.1f}" y="{TOP + 12}">now</text>')
    out.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch{" dashed" if s.dashed else ""}" style="border-color:{s.color}"></span>'
        f"{html.escape(s.label)}</li>"
        for s in drawn
    )
    return f'<figure class="chart-box"><figcaption>{html.escape(chart.title)}</figcaption>{"".join(out)}' + (
        f'<ul class="legend">{legend}</ul></figure>'
    )


def _paths(series: Series, end: datetime, x: object, y: object) -> list[str]:
    """Step-line path data, one per unbroken run of values."""
    assert callable(x) and callable(y)
    paths: list[str] = []
    current: list[str] = []
    points = list(series.points)
    for i, (t, v) in enumerate(points):
        t_next = points[i + 1][0] if i + 1 < len(points) else end
        if v is None:
            if current:
                paths.append(" ".join(current))
                current = []
            continue
        xa, xb, yy = x(t), x(t_next), y(v)
        current.append(f"{'M' if not current else 'L'}{xa:.1f},{yy:.1f} L{xb:.1f},{yy:.1f}")
    if current:
        paths.append(" ".join(current))
    return paths
