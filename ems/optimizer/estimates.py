"""Departure and energy of a session from past sessions, when neither the EV nor the driver says. Pure.

When a session has no departure (no ISO 15118 / NotifyEVChargingNeeds, no driver input) and
no energy request, the planner used to assume 8 h and 80 kWh for everyone. Most sites see the
same cards again and again, with habits that depend on the day of the week; this module turns
the site's finished sessions into an estimate for a new one, from the most specific group that
has enough history:

1. the same card (id token) on the same site-local weekday, with at least ``min_sessions``;
2. the same card on any day, with at least ``min_sessions``;
3. every session of the site (at least ``min_sessions``);
4. otherwise the planner's defaults.

Robust quantiles, not means (one forgotten car left over a weekend must not move the estimate):

- stay: the ``stay_quantile`` (default 25th percentile) of past durations. Planning for an
  earlier departure is the safe side: the car gets its energy sooner, and an estimate that
  is too early only costs a little flexibility (the controller keeps serving a car past its
  estimated departure, see ``ems.controller.planning``), whereas one too late leaves it short.
- energy: the ``energy_quantile`` (default median) of past delivered energy. The energy a car
  took is a lower bound of what it wanted only when it left full, so the median is a fair,
  outlier-proof guess; a car that wants more keeps charging at the plan's spare capacity.

Sessions shorter than ``min_stay_s`` or longer than ``max_stay_s``, and sessions that took less
than ``min_energy_wh`` (plugged in, nothing charged), are not habits and are left out.
Quantiles interpolate linearly between order statistics, so an estimate always lies within the
range of the group it came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class Source(StrEnum):
    TOKEN_WEEKDAY = "token-weekday"
    TOKEN = "token"
    SITE = "site"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class PastSession:
    """One finished session: who (id token, ``None`` if unknown), when (site-local weekday, 0 = Monday)."""

    token: str | None
    weekday: int
    stay_s: float
    energy_wh: float


@dataclass(frozen=True, slots=True)
class EstimateSettings:
    min_sessions: int = 4
    """A group (card and weekday, card, site) is used only with at least this many sessions."""
    stay_quantile: float = 0.25
    energy_quantile: float = 0.5
    min_stay_s: float = 600.0
    max_stay_s: float = 3 * 86_400.0
    min_energy_wh: float = 500.0
    default_stay_s: float = 8 * 3600
    default_energy_wh: float = 80_000


@dataclass(frozen=True, slots=True)
class Estimate:
    stay_s: float
    energy_wh: float
    source: Source
    sessions: int
    """How many past sessions the estimate rests on (0 for the defaults)."""


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of a non-empty sequence."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    pos = min(max(q, 0.0), 1.0) * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def local_weekday(at: datetime, timezone: str) -> int:
    """The weekday (0 = Monday) of the timezone-aware ``at`` in the site's ``timezone``."""
    return at.astimezone(ZoneInfo(timezone)).weekday()


def past_session(
    token: str | None, started_at: datetime, stopped_at: datetime, energy_wh: float, timezone: str
) -> PastSession:
    return PastSession(token, local_weekday(started_at, timezone), (stopped_at - started_at).total_seconds(), energy_wh)


def _summary(group: Sequence[PastSession], settings: EstimateSettings, source: Source) -> Estimate:
    return Estimate(
        stay_s=quantile([p.stay_s for p in group], settings.stay_quantile),
        energy_wh=quantile([p.energy_wh for p in group], settings.energy_quantile),
        source=source,
        sessions=len(group),
    )


class History:
    """The estimates of one site, computed once from its past sessions (refreshed by rebuilding)."""

    def __init__(self, sessions: Iterable[PastSession], settings: EstimateSettings | None = None) -> None:
        self.settings = s = settings or EstimateSettings()
        usable = [
            p
            for p in sessions
            if s.min_stay_s <= p.stay_s <= s.max_stay_s and p.energy_wh >= s.min_energy_wh and 0 <= p.weekday <= 6
        ]
        self.sessions = len(usable)
        by_token: dict[str, list[PastSession]] = {}
        by_day: dict[tuple[str, int], list[PastSession]] = {}
        for p in usable:
            if p.token is None:
                continue
            by_token.setdefault(p.token, []).append(p)
            by_day.setdefault((p.token, p.weekday), []).append(p)
        n = s.min_sessions
        self._token = {k: _summary(g, s, Source.TOKEN) for k, g in by_token.items() if len(g) >= n}
        self._day = {k: _summary(g, s, Source.TOKEN_WEEKDAY) for k, g in by_day.items() if len(g) >= n}
        self._site = (
            _summary(usable, s, Source.SITE)
            if len(usable) >= n
            else Estimate(s.default_stay_s, s.default_energy_wh, Source.DEFAULT, 0)
        )

    def estimate(self, token: str | None, weekday: int) -> Estimate:
        """For a session of ``token`` starting on site-local ``weekday``: the most specific estimate."""
        if token is not None:
            found = self._day.get((token, weekday)) or self._token.get(token)
            if found is not None:
                return found
        return self._site


EMPTY = History(())
"""No history: every estimate is the defaults."""
