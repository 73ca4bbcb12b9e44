"""A simulated station acting on its own: stay connected, charge and meter, obey remote commands.

``run_station(station)`` runs a ``SimStation`` on its own: three loops in one TaskGroup. The connection loop
reconnects with back-off (real seconds: 0.5 doubling to 10) and flushes the offline
queue; the charging loop advances the EVs every ``tick_s`` of simulated time, sends meter
values every ``meter_interval_s`` and stops when an EV is full or its driver leaves; the
intent loop carries out remote starts and stops after their answers were sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import websockets
from ocpp.exceptions import OCPPError

from ems.sim.state import IntentKind
from ems.sim.station import SimStation
from ems.tasks import cancel_and_wait, wait_any

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 0.5
"""First reconnect back-off (real seconds), doubling to ``MAX_RECONNECT_DELAY_S``."""
MAX_RECONNECT_DELAY_S = 10.0


async def run_station(station: SimStation) -> None:
    """The three loops until one fails or this is cancelled.

    Not a TaskGroup: the ``ocpp`` library awaits answers with ``asyncio.wait_for``, which on
    Python 3.11 can swallow a cancellation, and a TaskGroup cancels its children only once.
    ``cancel_and_wait`` cancels again until each loop has really ended (shielded, so that a
    repeated cancel of this task cannot cut the clean-up short).
    """
    loops = [
        asyncio.create_task(connection_loop(station), name=f"{station.id}-connection"),
        asyncio.create_task(charging_loop(station), name=f"{station.id}-charging"),
        asyncio.create_task(intent_loop(station), name=f"{station.id}-intents"),
    ]
    try:
        done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
        for loop in done:
            loop.result()
    finally:
        await asyncio.shield(_stop_all(loops))


async def _stop_all(loops: list[asyncio.Task[None]]) -> None:
    for loop in loops:
        try:
            await cancel_and_wait(loop)
        except Exception:
            # Raised to the caller already if it ended the station; logged in any case.
            log.exception("%s ended with an error", loop.get_name())


async def connection_loop(station: SimStation) -> None:
    delay = RECONNECT_DELAY_S
    while True:
        if not station.online_allowed:
            station.queue_changed.clear()
            await station.queue_changed.wait()
            continue
        try:
            await station.connect()
            await station.boot()
            delay = RECONNECT_DELAY_S
            reader = station.reader
            assert reader is not None  # connect() started it
            while not reader.done():
                station.queue_changed.clear()
                await station.flush()
                await wait_any([reader], station.queue_changed)
        except (
            OSError,
            websockets.InvalidHandshake,
            websockets.ConnectionClosed,
            TimeoutError,
            OCPPError,
        ) as error:
            log.info("%s: connection failed (%s); retrying in %.1f s", station.id, error, delay)
        station.connected.clear()
        station.stats.reconnects += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RECONNECT_DELAY_S)


async def charging_loop(station: SimStation) -> None:
    while True:
        await station.clock.sleep(station.tick_s)
        station.advance(station.tick_s)
        now = station.clock.now()
        for evse in list(station.evses.values()):
            if evse.tx is None or evse.ev is None:
                continue
            due = evse.last_meter_at is None or (now - evse.last_meter_at).total_seconds() >= station.meter_interval_s
            if due:
                await _guard(station, station.send_meter_values(evse.id))
            departed = evse.ev.departure_at is not None and now >= evse.ev.departure_at
            if departed or evse.ev.full:
                await _guard(station, station.stop(evse.id, "EVDisconnected"))


async def intent_loop(station: SimStation) -> None:
    while True:
        intent = await station.intents.get()
        evse = station.evses.get(intent.evse_id)
        if evse is None:
            continue
        if intent.kind is IntentKind.START and evse.tx is None and intent.id_tag:
            await _guard(station, station.start(intent.evse_id, intent.id_tag, remote_start_id=intent.remote_start_id))
        elif intent.kind is IntentKind.STOP and evse.tx is not None:
            await _guard(station, station.stop(intent.evse_id, intent.id_tag or "Remote", unplug=False))


async def _guard(station: SimStation, step: Any) -> None:
    """Run one step of the autonomous loops; a link failure mid-step is retried by the queue."""
    try:
        await step
    except (websockets.ConnectionClosed, ConnectionError, TimeoutError, OCPPError, PermissionError) as error:
        log.info("%s: %s", station.id, error)
