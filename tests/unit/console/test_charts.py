"""Server-drawn charts: round ticks, local times on the axis, units, broken lines, unused series dropped."""

import re
from datetime import UTC, datetime, timedelta

from ems.console.charts import Chart, Series, nice_step, render

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_nice_steps_are_round() -> None:
    assert nice_step(100) == 20
    assert nice_step(7) == 2
    assert nice_step(0.9) == 0.2
    assert nice_step(240) == 50
    assert nice_step(0) == 1


def test_axes_carry_unit_local_hours_and_zone() -> None:
    chart = Chart(
        "Current",
        "A",
        T0,
        T0 + timedelta(hours=24),
        "Asia/Kolkata",
        [Series("L1", [(T0, 10.0), (T0 + timedelta(hours=1), 30.0)], "#000")],
        now=T0 + timedelta(hours=12),
    )
    svg = render(chart)
    assert ">A</text>" in svg and "time (Asia/Kolkata, IST)" in svg and ">now</text>" in svg
    hours = re.findall(r'class="tick"[^>]*>(\d\d:\d\d)</text>', svg)
    # 12:00 UTC is 17:30 in Kolkata: the first whole local hour on a 4-hour grid is 20:00
    assert hours[0] == "20:00" and all(h.endswith(":00") for h in hours)
    assert ">30</text>" in svg  # y axis reaches the top value, in round steps


def test_none_breaks_the_line_and_empty_series_are_left_out() -> None:
    points = [(T0, 1.0), (T0 + timedelta(hours=1), None), (T0 + timedelta(hours=2), 2.0)]
    svg = render(
        Chart(
            "P",
            "kW",
            T0,
            T0 + timedelta(hours=3),
            "UTC",
            [
                Series("drawn", points, "#111"),
                Series("nothing", [(T0, None)], "#222"),
            ],
        )
    )
    assert svg.count('stroke="#111"') == 2  # two runs
    assert "nothing" not in svg and "drawn" in svg
