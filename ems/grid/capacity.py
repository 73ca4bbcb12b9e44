"""The capacity policy: what a site and each of its circuits may draw, now and over time.

Pure: no clock, no I/O. Time comes in as an argument; the caller (``ems.services.capacity``)
asks the clock and calls ``tick(now)`` whenever ``next_change_at`` comes due.

For every target (the site's grid connection, ``circuit_id is None``, or one circuit) the
capacity in force at a time ``t`` is the lowest of

* the static limit from the site file (``capacity_w``, ``phase_limits_a``);
* every block of the latest forecast covering ``t`` (a new forecast replaces the old one);
* every block of the latest immediate limit covering ``t`` (a new limit replaces the old one);
* for the site connection only, while the site is stale, its ``failsafe_capacity_w``.

Power bounds (W, kW) and current bounds (A, per phase or every phase) are kept apart: the
optimizer constrains both. A block ``[start, end)`` covers ``start <= t < end``.

Staleness is per site: a site is stale when no fresh valid signal for it (or any of its
circuits) has arrived for ``stale_after_s``. The watch starts at ``watch_from`` (when a
grid operator is expected from start-up) or else at the first fresh signal, so a site that
never hears from a grid operator never goes stale. A stale site keeps its forecasts and
limits; the fail-safe value is one more bound on top, lifted when a fresh signal arrives.

Every change of what is in force is a ``CapacityChanged`` event with its reason; every
accepted signal produces one for its target, even when the value in force now is the same
(its timeline changed, so the optimizer must re-plan).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from ems.domain.capacity import (
    OPEN_END,
    CapacityBlock,
    CapacityChangeReason,
    CapacityInterval,
    CapacitySignal,
    CapacityUnit,
    LimitSource,
    SignalKind,
)
from ems.domain.events import CapacityChanged
from ems.domain.site import Site
from ems.domain.units import ALL_PHASES, Phase
from ems.errors import InvalidInput

Target = tuple[str, str | None]
"""(site id, circuit id or ``None`` for the site's grid connection)."""

_PRIORITY = {source: rank for rank, source in enumerate(LimitSource)}
"""On equal values the source listed first in ``LimitSource`` is named (fail-safe before limit ...)."""


@dataclass(slots=True)
class _TargetState:
    static_w: float | None
    static_a: dict[Phase, float]
    forecast: CapacitySignal | None = None
    limit: CapacitySignal | None = None
    reported: CapacityInterval | None = None


@dataclass(slots=True)
class _SiteState:
    site: Site
    last_valid_at: datetime | None
    stale_reported: bool = False
    targets: dict[str | None, _TargetState] = field(default_factory=dict)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.site.stale_after_s)

    def stale_at(self, when: datetime) -> bool:
        return self.last_valid_at is not None and when - self.last_valid_at >= self.stale_after


def block_bounds(block: CapacityBlock) -> tuple[float | None, dict[Phase, float]]:
    """A block as (power bound in W or ``None``, current bounds in A per phase)."""
    if block.unit is CapacityUnit.W:
        return block.capacity, {}
    if block.unit is CapacityUnit.KW:
        return block.capacity * 1000.0, {}
    phases = ALL_PHASES if block.phase is None else (block.phase,)
    return None, dict.fromkeys(phases, block.capacity)


def _lowest(candidates: list[tuple[float, LimitSource]]) -> tuple[float | None, LimitSource | None]:
    if not candidates:
        return None, None
    value, source = min(candidates, key=lambda c: (c[0], _PRIORITY[c[1]]))
    return value, source


class CapacityPolicy:
    """Merges static limits, forecasts, immediate limits and staleness for a set of sites."""

    def __init__(self, sites: Iterable[Site], *, watch_from: datetime | None = None) -> None:
        self._sites: dict[str, _SiteState] = {}
        for site in sites:
            state = _SiteState(site=site, last_valid_at=watch_from)
            state.targets[None] = _TargetState(site.capacity_w, dict(site.phase_limits_a))
            for c in site.circuits:
                state.targets[c.id] = _TargetState(c.capacity_w, dict(c.phase_limits_a))
            self._sites[site.id] = state
        self._last_tick: datetime | None = None
        # No change can happen on its own before ``_due`` (``None``: not known, tick in full).
        self._due: datetime | None = None

    # ------------------------------------------------------------ queries

    def site_ids(self) -> list[str]:
        return list(self._sites)

    def site(self, site_id: str) -> Site:
        """Raises ``KeyError`` for an unknown site."""
        return self._sites[site_id].site

    def targets(self, site_id: str) -> list[str | None]:
        """``None`` (the site connection) first, then every circuit id."""
        return list(self._sites[site_id].targets)

    def is_stale(self, site_id: str, now: datetime) -> bool:
        return self._sites[site_id].stale_at(now)

    def latest(self, site_id: str, circuit_id: str | None, kind: SignalKind) -> CapacitySignal | None:
        state = self._target(site_id, circuit_id)
        return state.forecast if kind is SignalKind.FORECAST else state.limit

    def reported(self, site_id: str, circuit_id: str | None) -> CapacityInterval | None:
        """What the last event for this target said was in force (``None`` before the first look)."""
        return self._target(site_id, circuit_id).reported

    def is_duplicate(self, signal: CapacitySignal) -> bool:
        """The same message id as the signal in force for its target and kind (a QoS 1 redelivery)."""
        if signal.message_id is None:
            return False
        try:
            latest = self.latest(signal.site_id, signal.circuit_id, signal.kind)
        except KeyError:
            return False
        return latest is not None and latest.message_id == signal.message_id

    def in_force(self, site_id: str, circuit_id: str | None, now: datetime) -> CapacityInterval:
        """What is in force at ``now``, as an interval running until the next change (``OPEN_END``: none known)."""
        site = self._sites[site_id]
        state = self._target(site_id, circuit_id)
        stale = site.stale_at(now)
        here = self._evaluate(site, circuit_id, state, now, OPEN_END, stale)
        for cut in sorted({t for b in self._blocks(state) for t in (b.start, b.end) if t > now}):
            if not self._evaluate(site, circuit_id, state, cut, OPEN_END, stale).same_limits(here):
                return _with_end(here, cut)
        return here

    def timeline(self, site_id: str, circuit_id: str | None, start: datetime, end: datetime) -> list[CapacityInterval]:
        """The capacity in force over ``[start, end)``, as consecutive intervals with distinct limits.

        Staleness is judged at ``start`` and held over the whole span: a stale site stays on
        its fail-safe value until a signal arrives, and a fresh one is not assumed to go stale.
        """
        if end <= start:
            raise ValueError(f"timeline end {end} is not after start {start}")
        site = self._sites[site_id]
        state = self._target(site_id, circuit_id)
        stale = site.stale_at(start)
        cuts = {start, end}
        for block in self._blocks(state):
            cuts.update(t for t in (block.start, block.end) if start < t < end)
        points = sorted(cuts)
        out: list[CapacityInterval] = []
        for lo, hi in pairwise(points):
            here = self._evaluate(site, circuit_id, state, lo, hi, stale)
            if out and out[-1].same_limits(here):
                out[-1] = _with_end(out[-1], hi)
            else:
                out.append(here)
        return out

    def next_change_at(self, now: datetime) -> datetime | None:
        """The earliest time after ``now`` at which something may change on its own."""
        times: list[datetime] = []
        for site in self._sites.values():
            if site.last_valid_at is not None and not site.stale_at(now):
                times.append(site.last_valid_at + site.stale_after)
            for state in site.targets.values():
                for block in self._blocks(state):
                    times.extend(t for t in (block.start, block.end) if t > now)
        return min(times, default=None)

    # ------------------------------------------------------------ changes

    def tick(self, now: datetime) -> list[CapacityChanged]:
        """Move time on to ``now``: expire blocks, start blocks, detect staleness; events for every change."""
        return self._tick(now, full=False)

    def _tick(self, now: datetime, *, full: bool) -> list[CapacityChanged]:
        since = self._last_tick
        if since is not None and now < since:
            now = since  # a clock step backwards must not revive expired blocks
        self._last_tick = now
        if not full and self._due is not None and now < self._due:
            return []  # nothing can have changed on its own: every signal would pay for every target
        events: list[CapacityChanged] = []
        for site_id, site in self._sites.items():
            stale = site.stale_at(now)
            flipped = stale != site.stale_reported
            site.stale_reported = stale
            for circuit_id, state in site.targets.items():
                expired = self._expire(state, now)
                started = since is not None and any(since < b.start <= now for b in self._blocks(state))
                if flipped:
                    reason = CapacityChangeReason.STALE if stale else CapacityChangeReason.RESUMED
                elif expired:
                    reason = CapacityChangeReason.BLOCK_EXPIRED
                elif started:
                    reason = CapacityChangeReason.BLOCK_STARTED
                else:
                    reason = CapacityChangeReason.BLOCK_EXPIRED  # only reported if the value moved
                event = self._report(site_id, circuit_id, now, reason, force=flipped)
                if event is not None:
                    events.append(event)
        self._due = self.next_change_at(now) or OPEN_END
        return events

    def apply(self, signal: CapacitySignal, *, fresh: bool = True) -> list[CapacityChanged]:
        """Put a validated signal in force; the events of every change it causes, its own last.

        ``fresh=False`` (a retained message replayed by the broker, for example) applies the
        content without counting as a sign of life for staleness.
        """
        site = self._sites.get(signal.site_id)
        if site is None or signal.circuit_id not in site.targets:
            where = signal.site_id if signal.circuit_id is None else f"{signal.site_id}/{signal.circuit_id}"
            raise InvalidInput("unknown target", [f"{where} is not a site or circuit of this controller"])
        at = signal.received_at if self._last_tick is None else max(signal.received_at, self._last_tick)
        events = self.tick(at)
        if fresh:
            site.last_valid_at = at
            if site.stale_reported:
                events.extend(self._tick(at, full=True))  # the stale -> resumed flip, for every target of the site
            self._due_by(site.last_valid_at + site.stale_after)
        state = site.targets[signal.circuit_id]
        if signal.kind is SignalKind.FORECAST:
            state.forecast = signal
            reason = CapacityChangeReason.NEW_FORECAST
        else:
            state.limit = signal
            reason = CapacityChangeReason.IMMEDIATE_LIMIT
        self._expire(state, at)
        for block in signal.blocks:
            self._due_by(block.start if block.start > at else block.end)
        event = self._report(signal.site_id, signal.circuit_id, at, reason, force=True, message_id=signal.message_id)
        assert event is not None  # force=True always reports
        events.append(event)
        return events

    # ------------------------------------------------------------ internals

    def _due_by(self, when: datetime) -> None:
        if self._due is not None and when < self._due:
            self._due = when

    def _target(self, site_id: str, circuit_id: str | None) -> _TargetState:
        return self._sites[site_id].targets[circuit_id]

    @staticmethod
    def _blocks(state: _TargetState) -> list[CapacityBlock]:
        out: list[CapacityBlock] = []
        for signal in (state.forecast, state.limit):
            if signal is not None:
                out.extend(signal.blocks)
        return out

    @staticmethod
    def _expire(state: _TargetState, now: datetime) -> bool:
        """Drop blocks that ended at or before ``now``; True if any did."""
        dropped = False
        for attr in ("forecast", "limit"):
            signal: CapacitySignal | None = getattr(state, attr)
            if signal is None:
                continue
            alive = tuple(b for b in signal.blocks if b.end > now)
            if len(alive) != len(signal.blocks):
                dropped = True
                setattr(state, attr, _replace_blocks(signal, alive))
        return dropped

    def _evaluate(
        self,
        site: _SiteState,
        circuit_id: str | None,
        state: _TargetState,
        start: datetime,
        end: datetime,
        stale: bool,
    ) -> CapacityInterval:
        power: list[tuple[float, LimitSource]] = []
        current: dict[Phase, list[tuple[float, LimitSource]]] = {p: [] for p in ALL_PHASES}
        if state.static_w is not None:
            power.append((state.static_w, LimitSource.STATIC))
        for phase, amps in state.static_a.items():
            current[phase].append((amps, LimitSource.STATIC))
        for signal, source in ((state.forecast, LimitSource.FORECAST), (state.limit, LimitSource.LIMIT)):
            if signal is None:
                continue
            for block in signal.blocks:
                if block.start <= start < block.end:
                    watts, amps_by_phase = block_bounds(block)
                    if watts is not None:
                        power.append((watts, source))
                    for phase, amps in amps_by_phase.items():
                        current[phase].append((amps, source))
        if stale and circuit_id is None and site.site.failsafe_capacity_w is not None:
            power.append((site.site.failsafe_capacity_w, LimitSource.FAILSAFE))
        capacity_w, capacity_source = _lowest(power)
        limits_a: dict[Phase, float] = {}
        sources_a: dict[Phase, LimitSource] = {}
        for phase, candidates in current.items():
            lowest_a, lowest_source = _lowest(candidates)
            if lowest_a is not None and lowest_source is not None:
                limits_a[phase] = lowest_a
                sources_a[phase] = lowest_source
        return CapacityInterval(start, end, capacity_w, capacity_source, limits_a, sources_a, stale)

    def _report(
        self,
        site_id: str,
        circuit_id: str | None,
        now: datetime,
        reason: CapacityChangeReason,
        *,
        force: bool,
        message_id: str | None = None,
    ) -> CapacityChanged | None:
        state = self._target(site_id, circuit_id)
        current = self.in_force(site_id, circuit_id, now)
        previous = state.reported
        state.reported = current
        if not force and (previous is None or previous.same_limits(current)):
            return None  # unchanged, or the first look (the configured static limit, known to all)
        return CapacityChanged(
            at=now,
            site_id=site_id,
            circuit_id=circuit_id,
            capacity_w=current.capacity_w,
            reason=reason,
            phase_limits_a=dict(current.phase_limits_a),
            source=current.capacity_source,
            stale=current.stale,
            previous_capacity_w=previous.capacity_w if previous is not None else None,
            message_id=message_id,
        )


def _with_end(interval: CapacityInterval, end: datetime) -> CapacityInterval:
    return CapacityInterval(
        interval.start,
        end,
        interval.capacity_w,
        interval.capacity_source,
        interval.phase_limits_a,
        interval.phase_sources,
        interval.stale,
    )


def _replace_blocks(signal: CapacitySignal, blocks: tuple[CapacityBlock, ...]) -> CapacitySignal | None:
    if not blocks:
        return None
    return CapacitySignal(
        site_id=signal.site_id,
        kind=signal.kind,
        blocks=blocks,
        received_at=signal.received_at,
        circuit_id=signal.circuit_id,
        message_id=signal.message_id,
        source=signal.source,
    )
