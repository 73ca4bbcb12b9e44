"""Decisions the OCPP side asks for, and commands to stations: answered through these ports."""

from __future__ import annotations

from typing import Protocol

from ems.domain.card import AuthorizationDecision
from ems.domain.commands import CommandResult, StationCommand


class Authorizer(Protocol):
    async def authorize(self, id_tag: str, *, station_id: str, evse_id: int | None = None) -> AuthorizationDecision:
        """May ``id_tag`` charge at this station? Decided from the card, and for prepaid cards its balance."""
        ...


class ChargerControl(Protocol):
    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        """Send ``command`` and wait for the station's answer; never raises for station faults."""
        ...

    def is_online(self, station_id: str) -> bool: ...
