"""The in-process event bus: typed domain events, one bounded queue per subscriber.

``publish`` never blocks on a slow subscriber unless that subscriber asked for
back-pressure. Each subscription chooses what happens when its queue is full:

* ``Overflow.DROP_OLDEST`` (default): the oldest event is dropped and counted; right for
  dashboards and re-plan triggers, where the newest state is what matters.
* ``Overflow.BLOCK``: ``publish`` waits for room; right for a subscriber that must see
  every event (an audit log). Use sparingly: it slows the publisher down to its pace.

``stats()`` shows depth, high-water mark and drops per subscriber: the visible metric
for a subscriber that falls behind. The bus is created and closed by the composition
root; there is no global instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from ems.domain.events import DomainEvent

log = logging.getLogger(__name__)

E = TypeVar("E", bound=DomainEvent)

DEFAULT_QUEUE_SIZE = 10_000
"""Room for ~30 s of a 300-station site sending MeterValues every 10 s, with margin."""


class Overflow(StrEnum):
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    name: str
    depth: int
    max_depth: int
    high_water: int
    delivered: int
    dropped: int


class Subscription(Generic[E]):
    """Events of the requested types, in publish order. Iterate it, or ``await get()``."""

    def __init__(self, bus: EventBus, name: str, types: tuple[type[E], ...], maxsize: int, overflow: Overflow) -> None:
        self._bus = bus
        self.name = name
        self.types = types
        self.overflow = overflow
        self._queue: asyncio.Queue[E] = asyncio.Queue(maxsize=maxsize)
        self._closed = False
        self.high_water = 0
        self.delivered = 0
        self.dropped = 0

    def wants(self, event: DomainEvent) -> bool:
        return isinstance(event, self.types)

    async def _offer(self, event: E) -> None:
        if self._closed:
            return
        if self.overflow is Overflow.BLOCK:
            await self._queue.put(event)
        else:
            if self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
                if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                    log.warning("subscriber %s is behind: %d events dropped", self.name, self.dropped)
            self._queue.put_nowait(event)
        self.delivered += 1
        self.high_water = max(self.high_water, self._queue.qsize())

    async def get(self) -> E:
        return await self._queue.get()

    def get_nowait(self) -> E | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self, limit: int = 1_000) -> list[E]:
        """Up to ``limit`` queued events without waiting: for subscribers that batch."""
        out: list[E] = []
        while len(out) < limit:
            item = self.get_nowait()
            if item is None:
                break
            out.append(item)
        return out

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._closed = True
        self._bus._remove(self)

    def stats(self) -> SubscriberStats:
        return SubscriberStats(
            self.name, self._queue.qsize(), self._queue.maxsize, self.high_water, self.delivered, self.dropped
        )

    async def __aiter__(self) -> AsyncIterator[E]:
        while True:
            yield await self._queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription[DomainEvent]] = []
        self.published = 0

    def subscribe(
        self,
        *types: type[E],
        name: str,
        maxsize: int = DEFAULT_QUEUE_SIZE,
        overflow: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription[E]:
        """Subscribe to events of ``types`` (and their subclasses); no types means every event."""
        wanted: tuple[type[E], ...] = types or (DomainEvent,)  # type: ignore[assignment]
        sub: Subscription[E] = Subscription(self, name, wanted, maxsize, overflow)
        self._subs.append(sub)  # type: ignore[arg-type]
        return sub

    def _remove(self, sub: Subscription[E]) -> None:
        if sub in self._subs:
            self._subs.remove(sub)  # type: ignore[arg-type]

    async def publish(self, event: DomainEvent) -> None:
        self.published += 1
        for sub in list(self._subs):
            if sub.wants(event):
                await sub._offer(event)

    def stats(self) -> list[SubscriberStats]:
        return [s.stats() for s in self._subs]

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
