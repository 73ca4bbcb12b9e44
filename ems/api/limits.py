"""HTTP request body size limit, as a plain ASGI middleware (before any route reads the body).

A request whose ``Content-Length`` is above ``max_body_bytes`` (``EMS_API_MAX_BODY_BYTES``,
1 MiB by default; the largest legitimate body, a week of 15-minute capacity blocks, is
~60 KiB) is answered ``413`` problem+json without reading it. A chunked body is counted
as it arrives and cut off with ``413`` at the limit, so no route ever holds more than the
limit in memory.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ems.api.observe import HttpStats
from ems.api.problems import PROBLEM_JSON


class BodyTooLarge(HTTPException):
    """Raised inside a route reading a chunked body past the limit: an HTTPException, so that
    FastAPI's body parsing passes it on as it is (it turns other errors into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is limited to {limit} bytes")


def _problem(limit: int) -> bytes:
    body = {
        "type": "about:blank",
        "title": "Request body too large",
        "status": 413,
        "detail": f"the request body is limited to {limit} bytes",
    }
    return json.dumps(body).encode()


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int, stats: HttpStats | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.stats = stats or HttpStats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    continue  # a malformed length is ignored: the body is counted as it arrives anyway
                if declared > limit:
                    await self._refuse(send)
                    return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        self.stats.refused += 1
        body = _problem(self.max_body_bytes)
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
