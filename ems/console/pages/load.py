"""The site's load page: current per phase and site power against the limits and capacity in force, the plan."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import Response

from ems.console import charts
from ems.console.auth import Viewer
from ems.console.context import Console
from ems.console.load import load_history
from ems.domain.units import ALL_PHASES

PHASE_COLORS = {"L1": "#b3261e", "L2": "#1a5fb4", "L3": "#26803a"}
PHASE_WIDTHS = {"L1": 7.0, "L2": 4.5, "L3": 2.0}
"""Balanced phases draw on top of each other: nested widths keep all three visible."""


def register(console: Console) -> None:
    deps, storage = console.deps, console.storage

    @console.get("/load")
    async def load_page(request: Request, viewer: Viewer, site: str | None = None) -> Response:
        chosen = deps.site(site) or deps.sites[0]
        now = console.clock.now()
        hist = await load_history(chosen, now, storage.samples, storage.signals, deps.capacity, deps.monitor)
        stop: tuple[datetime, float | None] = (hist.now, None)  # measured lines end now
        phase_series = [
            charts.Series(
                f"{p} measured",
                [*zip(hist.times, hist.phase_current_a[p], strict=True), stop],
                PHASE_COLORS[p],
                width=PHASE_WIDTHS[p],
            )
            for p in ALL_PHASES
        ]
        limits = [hist.phase_limit_a[p] for p in ALL_PHASES]
        if all(a == limits[0] for a in limits):
            phase_series.append(charts.Series("limit per phase", limits[0], "#6b3fa0", dashed=True))
        else:
            phase_series += [
                charts.Series(f"{p} limit", hist.phase_limit_a[p], PHASE_COLORS[p], dashed=True) for p in ALL_PHASES
            ]
        current_chart = charts.render(
            charts.Chart(
                "Current per phase: measured and limit in force",
                "A",
                hist.start,
                hist.end,
                chosen.timezone,
                phase_series,
                now=now,
            )
        )
        power_chart = charts.render(
            charts.Chart(
                "Site power: measured, planned and capacity in force",
                "kW",
                hist.start,
                hist.end,
                chosen.timezone,
                [
                    charts.Series(
                        "measured",
                        [*((t, w / 1000) for t, w in zip(hist.times, hist.power_w, strict=True)), stop],
                        "#1a5fb4",
                    ),
                    charts.Series(
                        "plan ahead",
                        [(t, None if w is None else w / 1000) for t, w in hist.plan_w],
                        "#26803a",
                        dashed=True,
                        width=4.5,
                    ),
                    charts.Series(
                        "capacity",
                        [(t, None if w is None else w / 1000) for t, w in hist.capacity_w],
                        "#b3261e",
                        dashed=True,
                    ),
                ],
                now=now,
            )
        )
        plan = deps.monitor.plan(chosen.id) if deps.monitor else None
        load = deps.monitor.site_load(chosen.id) if deps.monitor else None
        in_force = deps.capacity.in_force(chosen.id) if deps.capacity else None
        return console.page(
            request,
            "load.html",
            viewer,
            site=chosen,
            sites=deps.sites,
            current_chart=current_chart,
            power_chart=power_chart,
            plan=plan,
            load=load,
            in_force=in_force,
            title="Site load",
            refresh=True,
            plan_age=None if plan is None or plan.attempted_at is None else console.ago(plan.attempted_at),
        )
