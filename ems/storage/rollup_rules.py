"""The definitions the rollups are made of, as pure functions: 5-minute buckets, site-local days,
a register's series and the energy of its intervals, the phase slots of power readings
(``ems.storage.rollups`` keeps the tables; its docstring states the rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

BUCKET_S = 300
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_of(at: datetime) -> int:
    """Epoch seconds of the start of the 5-minute bucket holding ``at``."""
    return (at - EPOCH) // timedelta(seconds=BUCKET_S) * BUCKET_S


def at_of(bucket_s: int) -> datetime:
    return EPOCH + timedelta(seconds=bucket_s)


def slot_of(phase: str | None) -> int | None:
    """Offset of the phase's (sum, n, max) in an EVSE vector, ``None`` for a phase not kept (N, L1-L2 ...)."""
    if phase is None:
        return 1
    for i, name in enumerate(("L1", "L2", "L3")):
        if phase == name or phase == f"{name}-N":
            return 4 + 3 * i
    return None


def step_mwh(before_wh: float, after_wh: float) -> int:
    increase = after_wh - before_wh
    return round(increase * 1000) if increase > 0 else 0


def mean_mw(sum_mw: int, n: int) -> int:
    return sum_mw // n if n else 0


def to_us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Placement:
    site_id: str
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.timezone)


_ZONES: dict[str, ZoneInfo] = {}


def zone_named(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def local_day(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).date().isoformat()


def split_by_local_day(start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, int]:
    """Microseconds of ``[start, end)`` per site-local day (DST days are 23 or 25 hours long)."""
    out: dict[str, int] = {}
    cursor = start
    while cursor < end:
        local = cursor.astimezone(zone)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        piece_end = min(end, next_midnight.astimezone(UTC))
        day = local.date().isoformat()
        out[day] = out.get(day, 0) + to_us(piece_end - cursor)
        cursor = piece_end
    return out


def series(points: Iterable[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """One point per instant (its highest reading), oldest first."""
    best: dict[datetime, float] = {}
    for at, wh in points:
        if at not in best or wh > best[at]:
            best[at] = wh
    return sorted(best.items())


def interval_energy(points: Sequence[tuple[datetime, float]], out: dict[int, int], sign: int = 1) -> None:
    """Add (``sign`` 1) or take away (-1) the energy of each interval between consecutive ``points``."""
    for (_, before), (at, after) in pairwise(points):
        mwh = step_mwh(before, after)
        if mwh:
            bucket = bucket_of(at)
            out[bucket] = out.get(bucket, 0) + sign * mwh
