"""One station's live connection: frame routing, validation, handler dispatch, outgoing calls.

Built on the library's ``ChargePoint`` for what it does well (``call()`` with its
unique-id matching and response timeout; commands and their answers are validated with the
compiled schemas, not the library's jsonschema in a thread pool: a capacity drop sends
hundreds at once), with the inbound path replaced, because the library's costs ~1 ms per
message (jsonschema in a thread pool, regex camel/snake conversion, dataclass round trips)
and a bad frame is silently dropped:

- frames are parsed once; a frame that is not JSON or not an OCPP-J message gets a
  CALLERROR with message id ``"-1"`` (OCPP 2.0.1 part 4, 4.2.3) and the connection stays;
- CALL payloads are validated with compiled schemas (``validation.py``), with the
  library's CALLERROR codes; unknown actions answer NotImplemented / NotSupported as the
  library does;
- handlers take and return the wire payload (camelCase dicts) and stay thin.

Messages of one station are handled one at a time, in order (OCPP-J allows one CALL in
flight per direction); websockets' ``max_queue`` bounds what waits behind, pushing back
on the TCP connection instead of buffering without limit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from ocpp.charge_point import ChargePoint, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormatViolationError,
    InternalError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    ProtocolError,
)
from ocpp.messages import CallError, CallResult
from ocpp.v16 import call_result as r16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as r201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import ServerConnection

from ems.clock import Clock
from ems.domain.station import OcppVersion
from ems.ocpp.journal import Journal
from ems.ocpp.service import OcppService
from ems.ocpp.translate import Payload
from ems.ocpp.validation import MAX_JSON_DEPTH, Kind, message_id_of, nesting_exceeds, validate

log = logging.getLogger(__name__)

Handler = Callable[[Any, Payload], Awaitable[Payload]]
H = TypeVar("H", bound=Handler)

_KNOWN = {
    OcppVersion.V16: frozenset(a.value for a in Action16),
    OcppVersion.V201: frozenset(a.value for a in Action201),
}
_LIB_VERSION = {OcppVersion.V16: "1.6", OcppVersion.V201: "2.0.1"}
_CALL_RESULTS = {OcppVersion.V16: r16, OcppVersion.V201: r201}
"""What the library's ``call()`` builds answers from."""


def handles(action: str) -> Callable[[H], H]:
    """Mark a method as the handler of ``action``: it gets the payload, returns the answer payload."""

    def mark(func: H) -> H:
        func._ocpp_action = action  # type: ignore[attr-defined]
        return func

    return mark


class StationLink(ChargePoint):  # type: ignore[misc]
    version: ClassVar[OcppVersion]
    handlers: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {
            member._ocpp_action: member
            for member in vars(cls).values()
            if callable(member) and hasattr(member, "_ocpp_action")
        }
        cls._ocpp_version = _LIB_VERSION[cls.version]
        cls._call_result = _CALL_RESULTS[cls.version]

    def __init__(
        self,
        station_id: str,
        connection: ServerConnection,
        service: OcppService,
        clock: Clock,
        *,
        response_timeout_s: float,
        audit: Journal | None = None,
    ) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout_s, logger=log)
        self.ws = connection
        self.service = service
        self.clock = clock
        self.audit = audit
        self.received = 0
        self.call_errors_sent = 0
        self.replaced = False
        """Set when a new connection for the same station took over (the station is not offline)."""
        self._awaiting: dict[str, str] = {}
        """The action of each command sent and not answered yet, by message id (to validate its answer)."""

    async def start(self) -> None:
        """Serve this station until the connection closes (raises ``ConnectionClosed`` then)."""
        while True:
            await self.route_message(await self.ws.recv())

    async def _send(self, message: str) -> None:
        if self.audit is not None:
            self.audit.audit(self.id, "out", message, self.clock.now())
        await self.ws.send(message)

    async def _send_error(self, unique_id: str, error: OCPPError) -> None:
        self.call_errors_sent += 1
        self.service.traffic.call_errors_out[(self.version.value, getattr(error, "code", "GenericError"))] += 1
        frame = [4, unique_id, error.code, error.description, error.details or {}]
        await self._send(json.dumps(frame, separators=(",", ":"), default=str))

    async def route_message(self, raw: str | bytes) -> None:
        self.received += 1
        if self.audit is not None:
            self.audit.audit(
                self.id, "in", raw if isinstance(raw, str) else raw.decode("utf-8", "replace"), self.clock.now()
            )
        if nesting_exceeds(raw):
            log.warning("%s: frame nested deeper than %d levels refused", self.id, MAX_JSON_DEPTH)
            await self._send_error(
                message_id_of(raw),
                FormatViolationError(details={"cause": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}),
            )
            return
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            await self._send_error("-1", FormatViolationError(details={"cause": "Message is not valid JSON"}))
            return
        if not isinstance(msg, list) or len(msg) < 3 or msg[0] not in (2, 3, 4) or not isinstance(msg[1], str):
            unique_id = msg[1] if isinstance(msg, list) and len(msg) > 1 and isinstance(msg[1], str) else "-1"
            await self._send_error(
                unique_id, ProtocolError(details={"cause": "not an OCPP-J CALL, CALLRESULT or CALLERROR"})
            )
            return
        kind, unique_id = msg[0], msg[1]
        if kind == 2:
            if len(msg) != 4 or not isinstance(msg[2], str) or not isinstance(msg[3], dict):
                await self._send_error(
                    unique_id, ProtocolError(details={"cause": "a CALL is [2, id, action, {payload}]"})
                )
                return
            await self._handle_call(unique_id, msg[2], msg[3])
        elif self._call_lock.locked():
            # Only while one of our calls waits; a stray answer must not pile up in the queue.
            if kind == 3:
                self._response_queue.put_nowait(CallResult(unique_id, msg[2]))
            elif len(msg) >= 4:
                self._response_queue.put_nowait(CallError(unique_id, msg[2], msg[3], msg[4] if len(msg) > 4 else {}))

    async def _handle_call(self, unique_id: str, action: str, payload: Payload) -> None:
        known = action if action in _KNOWN[self.version] else "other"  # bounded label values
        self.service.traffic.calls_in[(self.version.value, known)] += 1
        handler = self.handlers.get(action)
        if handler is None:
            await self._send_error(unique_id, self._unhandled(action))
            return
        try:
            validate(self.version, action, payload)
            response = await handler(self, payload)
        except OCPPError as error:
            await self._send_error(unique_id, error)
            return
        except Exception:
            # The library answers InternalError here too; the station retries later, nothing is lost.
            log.exception("%s: handling %s failed", self.id, action)
            await self._send_error(unique_id, InternalError())
            return
        await self._send(json.dumps([3, unique_id, response], separators=(",", ":")))

    def _unhandled(self, action: str) -> OCPPError:
        """As the library: an action of this version without a handler is NotImplemented, others NotSupported."""
        if action in _KNOWN[self.version]:
            return NotImplementedError(details={"cause": f"No handler for {action} registered."})
        return NotSupportedError(details={"cause": f"{action} not supported by OCPP{_LIB_VERSION[self.version]}."})

    async def call_command(self, payload: Any) -> Any:
        """``call(payload, suppress=False)``: the station's answer, or the ``OCPPError`` of its CALLERROR.

        The command and the answer are validated with the compiled schemas (``validation.py``, the
        library's own schemas and error codes): an invalid command raises before it is sent, an
        answer that fails its schema raises as the library's validation would."""
        traffic = self.service.traffic
        action = type(payload).__name__
        traffic.calls_out[(self.version.value, action)] += 1
        validate(self.version, action, remove_nones(snake_to_camel_case(serialize_as_dict(payload))))
        unique_id = str(self._unique_id_generator())
        self._awaiting[unique_id] = action
        try:
            return await self.call(payload, suppress=False, unique_id=unique_id, skip_schema_validation=True)
        except OCPPError as error:
            traffic.call_errors_in[(self.version.value, getattr(error, "code", "GenericError"))] += 1
            raise
        finally:
            self._awaiting.pop(unique_id, None)

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:  # noqa: ASYNC109 (the library's)
        """The library's answer matching, with the answer validated (``call`` runs with its own skipped)."""
        response = await super()._get_specific_response(unique_id, timeout)
        action = self._awaiting.get(unique_id)
        if action is not None and isinstance(response, CallResult):
            validate(self.version, action, response.payload, Kind.RESPONSE)
        return response
