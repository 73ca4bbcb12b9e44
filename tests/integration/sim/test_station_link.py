"""The simulated station's link over a real WebSocket: ``disconnect`` waits until its reader has ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.asyncio.server import ServerConnection

from ems.domain.station import OcppVersion
from ems.sim.station import SimStation

WAIT_S = 10.0


async def _silent_csms(ws: ServerConnection) -> None:
    """Accepts the link and answers nothing; returns when the station closes it."""
    await ws.wait_closed()


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with websockets.serve(
        _silent_csms, "127.0.0.1", 0, subprotocols=[websockets.Subprotocol(v.value) for v in OcppVersion]
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


@pytest.mark.parametrize("version", list(OcppVersion))
async def test_disconnect_waits_for_the_reader(url: str, version: OcppVersion) -> None:
    station = SimStation("CP-LINK", url, version)
    await asyncio.wait_for(station.connect(), WAIT_S)
    library_reader = station.reader
    assert library_reader is not None and not library_reader.done()

    async def slow_reader() -> None:
        """The library's reader plus a slow clean-up, so that not waiting for it shows."""
        await library_reader
        await asyncio.sleep(0.2)

    station.reader = reader = asyncio.create_task(slow_reader())
    await asyncio.wait_for(station.disconnect(), WAIT_S)
    assert reader.done()  # before the fix disconnect looked for ``_reader`` and returned at once
    assert library_reader.done()
    assert not station.connected.is_set()


async def test_disconnect_before_connect_is_a_no_op() -> None:
    station = SimStation("CP-IDLE", "ws://127.0.0.1:9", OcppVersion.V16)
    await station.disconnect()
    assert station.reader is None
