"""The stations: the list with each EVSE's state, draw and limit; one station's page and its commands."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ems.console.auth import Viewer
from ems.console.command_form import command_from_form
from ems.console.context import PREFIX, Console, field_errors
from ems.domain.commands import CommandResult, CommandStatus
from ems.domain.station import ConnectorStatusRecord, Station
from ems.errors import InvalidInput, NotFound
from ems.throttle import security_event

NO_ERROR = {None, "", "NoError"}


def register(console: Console) -> None:
    deps, storage = console.deps, console.storage

    @console.get("")
    async def home(request: Request, viewer: Viewer) -> Response:
        return RedirectResponse(f"{PREFIX}/stations", status_code=303)

    async def connectors(station: Station) -> list[ConnectorStatusRecord]:
        """The latest status of each connector (newest record per EVSE and connector)."""
        latest: dict[tuple[int, int], ConnectorStatusRecord] = {}
        for record in await storage.stations.status_history(station.id, limit=200):
            latest.setdefault((record.evse_id, record.connector_id), record)
        return [latest[k] for k in sorted(latest) if k[0] != 0 or len(latest) == 1]

    def evse_rows(station: Station, records: list[ConnectorStatusRecord]) -> list[dict[str, Any]]:
        site = deps.site_of_station(station.id, station.site_id)
        spec = site.station(station.id)
        limits = {}
        draws: dict[int, float | None] = {}
        if deps.monitor is not None:
            limits = {e.evse_id: e for e in deps.monitor.evse_limits(site.id) if e.station_id == station.id}
            draws = {s.evse_id: s.power_w for s in deps.monitor.live_sessions(site.id) if s.station_id == station.id}
        evse_ids = sorted(
            {r.evse_id for r in records if r.evse_id > 0}
            | set(limits)
            | ({e.evse_id for e in spec.evses} if spec else set())
        )
        rows = []
        for evse_id in evse_ids:
            here = [r for r in records if r.evse_id == evse_id]
            limit = limits.get(evse_id)
            rows.append(
                {
                    "evse_id": evse_id,
                    "connectors": here,
                    "faults": [r for r in here if r.error_code not in NO_ERROR or r.status.value == "Faulted"],
                    "draw_w": draws.get(evse_id),
                    "limit_w": None if limit is None else limit.accepted_power_w,
                    "limit_a": None if limit is None else limit.accepted_current_a,
                    "limit_certain": True if limit is None else limit.certain,
                    "transaction_id": None if limit is None else limit.transaction_id,
                }
            )
        return rows

    @console.get("/stations")
    async def stations_page(request: Request, viewer: Viewer) -> Response:
        rows = []
        for station in await storage.stations.all():
            records = await connectors(station)
            rows.append(
                {
                    "station": station,
                    "evses": evse_rows(station, records),
                    "station_faults": [r for r in records if r.evse_id == 0 and r.error_code not in NO_ERROR],
                }
            )
        return console.page(request, "stations.html", viewer, rows=rows, title="Stations", refresh=True)

    async def station_page(
        request: Request,
        viewer: Viewer,
        station_id: str,
        result: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        station = await storage.stations.get(station_id)
        if station is None:
            raise NotFound(f"no station {station_id!r}")
        records = await connectors(station)
        history = await storage.stations.status_history(station.id, limit=20)
        active = await storage.sessions.query(station_id=station.id, active_only=True, limit=20)
        online = deps.charger_control.is_online(station.id) if deps.charger_control else station.online
        return console.page(
            request,
            "station.html",
            viewer,
            status=status,
            station=station,
            online=online,
            evses=evse_rows(station, records),
            history=history,
            active=active,
            result=result,
            errors=errors or {},
            title=f"Station {station.id}",
            site_id=deps.site_of_station(station.id, station.site_id).id,
        )

    @console.get("/stations/{station_id}")
    async def station_view(request: Request, viewer: Viewer, station_id: str) -> Response:
        return await station_page(request, viewer, station_id)

    @console.post("/stations/{station_id}/commands")
    async def station_command(request: Request, viewer: Viewer, station_id: str) -> Response:
        fields = await console.posted(request, viewer)
        if await storage.stations.get(station_id) is None:
            raise NotFound(f"no station {station_id!r}")
        try:
            command = command_from_form(fields)
        except InvalidInput as exc:
            return await station_page(request, viewer, station_id, errors=field_errors(exc.problems), status=422)
        if deps.charger_control is None:
            outcome = CommandResult(CommandStatus.OFFLINE, "no OCPP server runs in this process")
        else:
            outcome = await deps.charger_control.execute(station_id, command)
        security_event("console_command", who=viewer.name, station=station_id, command=command.name)
        result = {
            "command": command.name,
            "status": outcome.status.value,
            "detail": outcome.detail,
            "data": dict(outcome.data),
            "ok": outcome.ok,
        }
        return await station_page(request, viewer, station_id, result=result)
