"""HTTP request counters for ``/metrics``, by method, route template and status (plain ASGI middleware).

The route is the template (``/api/v1/stations/{station_id}``), never the raw path: raw paths
would give a label per station id and per scanner's guess. A request no route matched is
counted under ``unmatched``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(slots=True)
class HttpStats:
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    seconds: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    refused: int = 0
    """Requests answered 413 by the body size limit."""


class HttpMetrics:
    def __init__(self, app: ASGIApp, stats: HttpStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", "?"))
            self.stats.requests[(method, route, status)] += 1
            self.stats.seconds[(method, route)] += time.perf_counter() - started
