"""Remote commands to a station: ``POST /api/v1/stations/{id}/commands/{command}``.

The JSON body holds the command's fields (``ems.domain.commands``, snake_case); the answer
is the station's typed result, always ``200``: ``{"status": "ACCEPTED" | "REJECTED" |
"NOT_SUPPORTED" | "TIMEOUT" | "OFFLINE", "detail": ..., "data": {...}}``. An unknown
station or command is ``404``, a body that does not fit the command ``422``, and ``503``
when this process runs no OCPP server.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path
from pydantic import BaseModel, TypeAdapter, ValidationError

from ems.api.auth import Operator, Services
from ems.api.routes.stations import StationId
from ems.domain.commands import COMMANDS, CommandResult, CommandStatus, StationCommand
from ems.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1/stations", tags=["commands"])

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


class CommandResultPublic(BaseModel):
    status: CommandStatus
    detail: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, result: CommandResult) -> CommandResultPublic:
        return cls(status=result.status, detail=result.detail, data=dict(result.data))


def _naive(value: Any, path: str) -> list[str]:
    """Paths of naive datetimes anywhere in a parsed command (times must carry a UTC offset)."""
    if isinstance(value, datetime):
        return [path] if value.tzinfo is None else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in _naive(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, tuple | list):
        return [p for i, v in enumerate(value) for p in _naive(v, f"{path}[{i}]")]
    return []


def parse_command(name: str, body: dict[str, Any]) -> StationCommand:
    """The command ``name`` built from ``body``; raises ``NotFound`` / ``InvalidInput``."""
    cls = COMMANDS.get(name)
    if cls is None:
        raise NotFound(f"no command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    allowed = {f.name for f in dataclasses.fields(cls)}
    problems = [f"{key}: not a field of {name}" for key in body if key not in allowed]
    if problems:
        raise InvalidInput(f"invalid {name} command", problems)
    adapter = _ADAPTERS.setdefault(name, TypeAdapter(cls))
    try:
        command: StationCommand = adapter.validate_python(body)
    except ValidationError as error:
        raise InvalidInput(
            f"invalid {name} command",
            [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()],
        ) from error
    naive = _naive(command, "body")
    if naive:
        raise InvalidInput(f"invalid {name} command", [f"{p}: needs a UTC offset, e.g. +00:00" for p in naive])
    return command


@router.post(
    "/{station_id}/commands/{command}",
    summary="Send a command to a station and return its answer",
    description="Commands: " + ", ".join(f"`{n}`" for n in sorted(COMMANDS)) + ". Body: the command's fields.",
)
async def send_command(
    station_id: StationId,
    command: Annotated[str, Path(description="e.g. remote-start, set-charging-profile, reset")],
    services: Services,
    _: Operator,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> CommandResultPublic:
    parsed = parse_command(command, body or {})
    if services.charger_control is None:
        raise HTTPException(503, "no OCPP server runs in this process")
    if await services.storage.stations.get(station_id) is None:
        raise NotFound(f"no station {station_id!r}")
    return CommandResultPublic.of(await services.charger_control.execute(station_id, parsed))
