"""A clock that runs faster than real time, for demos: one real second is ``speed`` simulated seconds."""

from __future__ import annotations

from datetime import datetime, timedelta

from ems.clock import Clock


class ScaledClock:
    """``now()`` advances ``speed`` times faster than ``base``; ``sleep(s)`` waits ``s / speed`` real seconds."""

    def __init__(self, base: Clock, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._base = base
        self._speed = speed
        self._start_mono = base.monotonic()
        self._start = base.now()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._base.monotonic() - self._start_mono) * self._speed)

    def monotonic(self) -> float:
        return self._base.monotonic() * self._speed

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds / self._speed)
