"""The charging sessions, filtered by station, user, card and day, each with its cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import Request
from fastapi.responses import Response

from ems.console.auth import Viewer
from ems.console.context import Console


def register(console: Console) -> None:
    storage, billing = console.storage, console.billing

    @console.get("/sessions")
    async def sessions_page(
        request: Request, viewer: Viewer, station: str = "", user: str = "", card: str = "", day: str = ""
    ) -> Response:
        errors: dict[str, str] = {}
        since = until = None
        if day:
            try:
                d = date.fromisoformat(day)
                zone = console.zone_of()
                since = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)
                until = since + timedelta(days=1)
            except ValueError:
                errors["day"] = "A day as YYYY-MM-DD."
        tags: set[str] | None = None
        if user:
            tags = {c.uid for c in await storage.cards.all() if c.user_id == user}
        found = await storage.sessions.query(station_id=station or None, since=since, until=until, limit=500)
        shown = [
            s
            for s in found
            if (not card or s.id_tag == card) and (tags is None or (s.id_tag is not None and s.id_tag in tags))
        ][:200]
        costs = {s.id: await billing.service.billing.costs.get(s.id) for s in shown}
        return console.page(
            request,
            "sessions.html",
            viewer,
            sessions=shown,
            costs=costs,
            errors=errors,
            title="Sessions",
            filters={"station": station, "user": user, "card": card, "day": day},
            stations=[s.id for s in await storage.stations.all()],
            users=await billing.service.billing.users.all(limit=1000),
        )
