"""The clock: the one place that reads real time.

Everything else gets a ``Clock`` injected and asks it. Tests use ``FakeClock`` and move
time with ``advance()``; nothing waits on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts and rates)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told. ``sleep`` returns once ``advance`` has passed its deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (not backwards)."""
        self.advance((when - self._now).total_seconds())

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        waiting = []
        for deadline, fut in self._sleepers:
            if deadline <= self._mono:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((deadline, fut))
        self._sleepers = waiting

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, fut))
        await fut


async def sleep_until_set(clock: Clock, seconds: float, *events: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock``, or less if one of ``events`` is set first; True if one was."""
    waiters = [asyncio.ensure_future(clock.sleep(seconds)), *(asyncio.ensure_future(e.wait()) for e in events)]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return any(e.is_set() for e in events)
