"""``ChargerControl`` over the live OCPP connections: commands out, typed results back.

Never ``None`` and never an exception for a station's behaviour:

================================================  ==============
what happened                                     ``CommandStatus``
================================================  ==============
station not connected, or the link drops          OFFLINE
no answer within ``timeout_s`` (30 s)             TIMEOUT
CALLERROR NotImplemented / NotSupported           NOT_SUPPORTED
command has no equivalent in the station's        NOT_SUPPORTED
OCPP version (e.g. GetConfiguration on 2.0.1)
other CALLERROR, or an answer that fails schema   REJECTED
answer with an accepting status word              ACCEPTED
answer with another status word                   REJECTED
================================================  ==============

A command that cannot be rendered as a schema-valid message (bad input) raises
``InvalidInput``: that is the caller's fault, not the station's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError

from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.errors import InvalidInput
from ems.ocpp.link import StationLink
from ems.ocpp.translate import NotSupportedByVersion, call_error_result, command_result, render_command
from ems.ocpp.validation import validate

COMMAND_TIMEOUT_S = 30.0
"""OCPP-J's customary message timeout; stations answer commands in well under a second."""


class LinkRegistry:
    """The live connection of each station id (at most one: see the takeover policy in server.py)."""

    def __init__(self) -> None:
        self._links: dict[str, StationLink] = {}

    def add(self, link: StationLink) -> None:
        self._links[link.id] = link

    def remove(self, link: StationLink) -> None:
        if self._links.get(link.id) is link:
            del self._links[link.id]

    def get(self, station_id: str) -> StationLink | None:
        return self._links.get(station_id)

    def ids(self) -> list[str]:
        return sorted(self._links)

    def __len__(self) -> int:
        return len(self._links)


class OcppChargerControl:
    """Implements ``ems.ports.control.ChargerControl``."""

    def __init__(self, registry: LinkRegistry, *, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self._registry = registry
        self._timeout_s = timeout_s

    @property
    def registry(self) -> LinkRegistry:
        """The live links this control sends through (the OCPP server registers them)."""
        return self._registry

    def is_online(self, station_id: str) -> bool:
        return self._registry.get(station_id) is not None

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        link = self._registry.get(station_id)
        if link is None:
            return CommandResult(CommandStatus.OFFLINE, detail=f"station {station_id} is not connected")
        try:
            payload = render_command(command, link.version)
        except NotSupportedByVersion as error:
            return CommandResult(CommandStatus.NOT_SUPPORTED, detail=str(error))
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"cannot send {command.name}", [str(error)]) from error
        _check(link, payload)
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await link.call_command(payload)
        except TimeoutError:
            return CommandResult(CommandStatus.TIMEOUT, detail=f"no answer within {self._timeout_s:g} s")
        except OCPPError as error:
            return call_error_result(error.code, error.description)
        except UnknownCallErrorCodeError as error:
            return CommandResult(CommandStatus.REJECTED, detail=str(error))
        except websockets.ConnectionClosed:
            return CommandResult(CommandStatus.OFFLINE, detail="connection closed before the answer")
        return command_result(response)


def _check(link: StationLink, payload: Any) -> None:
    """Refuse a command whose message would not be schema-valid, before it reaches the station."""
    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
    try:
        validate(link.version, type(payload).__name__, body)
    except OCPPError as error:
        raise InvalidInput(
            f"{type(payload).__name__} would be invalid", [str(error.details.get("cause", error))]
        ) from error
