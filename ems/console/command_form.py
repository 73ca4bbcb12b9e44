"""The station command a console form asks for (remote start/stop, unlock, reset, availability). Pure."""

from __future__ import annotations

from ems.domain.commands import (
    Availability,
    ChangeAvailability,
    RemoteStart,
    RemoteStop,
    Reset,
    ResetKind,
    StationCommand,
    UnlockConnector,
)
from ems.errors import InvalidInput

COMMANDS = {"remote-start", "remote-stop", "unlock-connector", "reset", "change-availability"}


def _int(fields: dict[str, str], name: str, problems: list[str], *, default: int | None = None) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        if default is None:
            problems.append(f"{name}: required")
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}: a whole number")
        return None
    if value < 0:
        problems.append(f"{name}: must not be negative")
    return value


def command_from_form(fields: dict[str, str]) -> StationCommand:
    """The station command a console form asks for; ``InvalidInput`` naming each bad field."""
    name = fields.get("command", "")
    problems: list[str] = []
    if name not in COMMANDS:
        raise InvalidInput("unknown command", [f"command: choose one of {', '.join(sorted(COMMANDS))}"])
    if name == "remote-start":
        id_tag = fields.get("id_tag", "").strip()
        if not id_tag or len(id_tag) > 36:
            problems.append("id_tag: a card uid (1 to 36 characters)")
        evse = _int(fields, "evse_id", problems)
        if problems:
            raise InvalidInput("invalid remote-start", problems)
        return RemoteStart(id_tag=id_tag, evse_id=evse)
    if name == "remote-stop":
        tx = fields.get("transaction_id", "").strip()
        if not tx:
            raise InvalidInput("invalid remote-stop", ["transaction_id: choose the session to stop"])
        return RemoteStop(transaction_id=tx)
    if name == "unlock-connector":
        evse = _int(fields, "evse_id", problems)
        connector = _int(fields, "connector_id", problems, default=1)
        if problems or evse is None or connector is None:
            raise InvalidInput("invalid unlock-connector", problems)
        return UnlockConnector(evse_id=evse, connector_id=connector)
    if name == "reset":
        try:
            return Reset(kind=ResetKind(fields.get("kind", "Soft")))
        except ValueError:
            raise InvalidInput("invalid reset", ["kind: Soft or Hard"]) from None
    evse = _int(fields, "evse_id", problems, default=0)
    try:
        availability = Availability(fields.get("availability", ""))
    except ValueError:
        problems.append("availability: Operative or Inoperative")
    if problems:
        raise InvalidInput("invalid change-availability", problems)
    return ChangeAvailability(availability=availability, evse_id=evse or None)
