"""A real OCPP server on 127.0.0.1 port 0 over real storage (SQLite and PostgreSQL), with an event probe."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ems.bus import EventBus, Overflow, Subscription
from ems.clock import SystemClock
from ems.domain.card import Card
from ems.domain.events import DomainEvent
from ems.domain.station import OcppVersion, Station
from ems.ocpp.runtime import OcppRuntime
from ems.ocpp.server import OcppServerConfig
from ems.security import hash_password
from ems.sim.station import SimStation
from ems.storage.factory import SqlStorage
from ems.tasks import cancel_and_wait

E = TypeVar("E", bound=DomainEvent)
WAIT_S = 10.0
"""Generous for a loaded 2-core CI machine; every wait ends as soon as its event arrives."""


@dataclass
class OcppEnv:
    runtime: OcppRuntime
    storage: SqlStorage
    bus: EventBus
    events: Subscription[DomainEvent]
    seen: list[DomainEvent] = field(default_factory=list)
    stations: list[SimStation] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.runtime.server.url

    async def wait_for(self, kind: type[E], where: Callable[[E], bool] = lambda e: True, within_s: float = WAIT_S) -> E:
        """The first event of ``kind`` matching ``where``, seen before or arriving within ``within_s``."""
        for event in self.seen:
            if isinstance(event, kind) and where(event):
                self.seen.remove(event)
                return event

        async def next_match() -> E:
            while True:
                event = await self.events.get()
                if isinstance(event, kind) and where(event):
                    return event
                self.seen.append(event)

        return await asyncio.wait_for(next_match(), within_s)

    async def station(
        self, station_id: str, version: OcppVersion, *, password: str | None = None, register: bool = True, **kw: Any
    ) -> SimStation:
        if register:
            await self.storage.stations.add(
                Station(id=station_id, password_hash=hash_password(password) if password else None)
            )
        sim = SimStation(station_id, self.url, version, password=password, **kw)
        self.stations.append(sim)
        return sim

    async def booted(self, station_id: str, version: OcppVersion, **kw: Any) -> SimStation:
        """A registered simulated station, connected and booted."""
        sim = await self.station(station_id, version, **kw)
        await sim.connect()
        await sim.boot()
        return sim

    async def drained(self) -> None:
        await asyncio.wait_for(self.runtime.drained(), WAIT_S)


async def start_env(
    storage: SqlStorage, journal: Path, config: OcppServerConfig, *, cards: bool = True, drain_s: float = 10.0
) -> tuple[OcppEnv, asyncio.Event, asyncio.Task[None]]:
    bus = EventBus()
    events = bus.subscribe(name="test", overflow=Overflow.BLOCK, maxsize=100_000)
    runtime = await OcppRuntime.open(config, storage, bus, SystemClock(), journal_path=journal)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, drain_timeout_s=drain_s))
    await asyncio.wait_for(runtime.server.started.wait(), WAIT_S)
    if cards:
        await storage.cards.add(Card(uid="GOOD-CARD"))
    return OcppEnv(runtime, storage, bus, events), stop, task


async def stop_env(env: OcppEnv, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    for sim in env.stations:
        async with asyncio.timeout(WAIT_S):
            await sim.close()
    stop.set()
    done, _ = await asyncio.wait({task}, timeout=WAIT_S)
    if not done:
        _dump_tasks(f"the OCPP runtime did not stop within {WAIT_S} s")
        await cancel_and_wait(task)
        raise AssertionError(f"the OCPP runtime did not stop within {WAIT_S} s (tasks dumped to stderr)")


def _dump_tasks(why: str) -> None:
    print(f"--- {why}; pending tasks:", file=sys.stderr)
    for pending in asyncio.all_tasks():
        pending.print_stack(limit=12, file=sys.stderr)


@pytest.fixture
async def env(storage: SqlStorage, tmp_path: Path) -> AsyncIterator[OcppEnv]:
    e, stop, task = await start_env(storage, tmp_path / "journal.db", OcppServerConfig(port=0, takeover_probe_s=1.0))
    try:
        yield e
    finally:
        await stop_env(e, stop, task)


@pytest.fixture(params=[OcppVersion.V16, OcppVersion.V201], ids=["1.6", "2.0.1"])
def version(request: pytest.FixtureRequest) -> OcppVersion:
    v: OcppVersion = request.param
    return v
