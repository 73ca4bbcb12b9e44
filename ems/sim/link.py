"""A simulated station's link to the CSMS: one WebSocket with the ``ocpp`` library's ChargePoint on it.

The link knows nothing of EVSEs or transactions: it opens (subprotocol, HTTP Basic, TLS), runs the
library's receive loop in ``reader``, sends a CALL and returns the answer (or raises the CALLERROR),
and closes, waiting for its reader. ``ems.sim.station`` decides what to send.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable
from typing import Any

import websockets
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v201 import ChargePoint as Cp201
from websockets.asyncio.client import ClientConnection

from ems.domain.station import OcppVersion

CLOSE_WAIT_S = 5.0
"""How long ``close`` waits for the reader after the close handshake (it ends at once normally)."""


class SimLink:
    def __init__(
        self,
        station_id: str,
        url: str,
        version: OcppVersion,
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.station_id = station_id
        self.url = url
        self.version = version
        self.password = password
        self.ssl_context = ssl_context
        self.ws: ClientConnection | None = None
        self.cp: Cp16 | Cp201 | None = None
        self.reader: asyncio.Task[None] | None = None
        """Runs the library's receive loop while connected; ends when the link closes."""

    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _tls(self) -> dict[str, Any]:
        """websockets wants ``ssl`` only for wss:// (the system trust store unless a context is given)."""
        return {"ssl": self.ssl_context} if self.ssl_context is not None else {}

    async def open(
        self, charge_point: Callable[[ClientConnection], Cp16 | Cp201], on_closed: Callable[[], None]
    ) -> None:
        """Open the WebSocket (raises on a refused handshake) and start the reader; ``on_closed``
        runs when the reader ends, however it ends."""
        ws = await websockets.connect(
            self.url,
            subprotocols=[websockets.Subprotocol(self.version.value)],
            additional_headers=self._headers(),
            **self._tls(),
            open_timeout=10,
            compression=None,
        )
        self.cp = charge_point(ws)
        self.ws = ws
        self.reader = asyncio.get_running_loop().create_task(self._read(self.cp, on_closed))

    @staticmethod
    async def _read(cp: Cp16 | Cp201, on_closed: Callable[[], None]) -> None:
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            on_closed()

    async def call(self, message: Any) -> Any:
        """Send one CALL and return the answer; raises the ``OCPPError`` of a CALLERROR (never ``None``)."""
        if self.cp is None:
            raise ConnectionError("not connected")
        return await self.cp.call(message, suppress=False)

    async def close(self) -> None:
        """Close the WebSocket and wait (``CLOSE_WAIT_S`` at most) for the reader, without cancelling
        it or raising what it raised, so that a close never fails."""
        if self.ws is not None:
            await self.ws.close()
            await self.ws.wait_closed()
        if self.reader is not None:
            await asyncio.wait({self.reader}, timeout=CLOSE_WAIT_S)
