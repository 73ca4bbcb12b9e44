"""Cheap schema validation: the ``ocpp`` library's own JSON schemas, compiled with fastjsonschema.

The library validates every message with ``jsonschema`` in a thread-pool executor: about
300-480 us per MeterValues on this machine, plus the thread hop. The same official schemas
compiled to Python code validate in ~5 us. Errors map to CALLERROR codes exactly as the
library maps them (``ocpp.messages._validate_payload``):

=========================  ===============================
schema rule violated       OCPP error (library class)
=========================  ===============================
``type``, ``maxLength``    TypeConstraintViolation
``required``               ProtocolError
``additionalProperties``   FormatViolation
anything else              FormatViolation
no schema for the action   NotImplemented
=========================  ===============================

Validators compile on first use (10-30 ms each) and are cached per (version, action, kind).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from enum import StrEnum
from importlib import resources
from typing import Any

import fastjsonschema
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)

from ems.domain.station import OcppVersion

Validator = Callable[[Any], Any]


class Kind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


_DIRS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201"}
_cache: dict[tuple[OcppVersion, str, Kind], Validator | None] = {}
_lock = threading.Lock()


def _schema_name(version: OcppVersion, action: str, kind: Kind) -> str:
    if kind is Kind.RESPONSE:
        return f"{action}Response.json"
    return f"{action}Request.json" if version is OcppVersion.V201 else f"{action}.json"


def validator(version: OcppVersion, action: str, kind: Kind = Kind.REQUEST) -> Validator | None:
    """The compiled validator, or ``None`` if the library has no schema for ``action``."""
    key = (version, action, kind)
    found = _cache.get(key, False)
    if found is not False:
        return found  # type: ignore[return-value]
    with _lock:
        if key in _cache:
            return _cache[key]
        if not action.isalnum():
            compiled: Validator | None = None
        else:
            path = resources.files("ocpp").joinpath(_DIRS[version], "schemas", _schema_name(version, action, kind))
            try:
                schema = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError):
                compiled = None
            else:
                compiled = fastjsonschema.compile(schema)
        _cache[key] = compiled
        return compiled


def validate(version: OcppVersion, action: str, payload: Any, kind: Kind = Kind.REQUEST) -> None:
    """Raise the library's ``OCPPError`` subclass for an invalid ``payload``; return if valid."""
    check = validator(version, action, kind)
    if check is None:
        raise NotImplementedError(details={"cause": f"Failed to validate action: {action}"})
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as error:
        raise schema_error(error.rule, error.message) from None


def schema_error(rule: str | None, message: str) -> OCPPError:
    if rule in ("type", "maxLength"):
        return TypeConstraintViolationError(details={"cause": message})
    if rule == "required":
        return ProtocolError(details={"cause": message})
    return FormatViolationError(details={"cause": message})


MAX_JSON_DEPTH = 32
"""Nesting bound for an inbound frame, checked before parsing. The deepest OCPP message
(2.0.1 NotifyReport / SetChargingProfile) nests about 8 levels including the OCPP-J array; 200
KB of ``[[[[...`` made ``json.loads`` raise RecursionError (a traceback and close 1011)."""

_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_MESSAGE_ID = re.compile(r'^\s*\[\s*[234]\s*,\s*"((?:[^"\\]|\\.){0,36})"')


def nesting_exceeds(frame: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if JSON ``frame`` nests arrays/objects deeper than ``limit`` (brackets in strings do not count).

    Linear in the frame and cheap where it matters: a frame with at most ``limit`` brackets in all
    cannot exceed it (one C-speed count); otherwise only structural characters are visited.
    """
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = False
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if in_string:
            if escaped:
                escaped = False  # an escaped quote or backslash; other escapes have no structural chars
            elif char == "\\":
                escaped = match.end() < len(text) and text[match.end()] in '"\\'
                if escaped:
                    continue
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def message_id_of(frame: str | bytes) -> str:
    """The OCPP-J message id at the start of an unparsed frame, or ``"-1"`` (to answer a frame we refuse to parse)."""
    text = frame[:200].decode("utf-8", "replace") if isinstance(frame, bytes) else frame[:200]
    match = _MESSAGE_ID.match(text)
    return match.group(1) if match and "\\" not in match.group(1) else "-1"
