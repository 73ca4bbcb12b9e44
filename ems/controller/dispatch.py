"""Dispatch that keeps the safety invariant: which profiles to send, in what order (pure).

A dispatch round takes the profiles the plan wants installed (``Desired``: the fail-safe
``TxDefaultProfile`` of every EVSE, the ``TxProfile`` of every session) and compares each
with what its EVSE may have installed (``EvseBelief``), over every period, from now on:

- unchanged (the same limits at every instant from now on, far enough from its end):
  nothing is sent, unless the station (re)connected or booted since it last accepted it
  (re-install on every connect and boot);
- a **cut** (the EVSE's bound with the new profile is nowhere higher): sent at once, in
  the first wave; a cut never raises what any EVSE may draw, so it is always safe;
- a **raise** (higher somewhere): sent in a later wave only if the ``Budget`` (every node,
  every phase, every instant) still holds with the EVSE counted at the higher of its old
  and new limits — that is, once the cuts it depends on were accepted; a cut that was
  refused, timed out or is still unanswered keeps its EVSE counted at its old limit;
- a **mixed** change (lower at some instants, higher at others) that does not fit yet is
  first sent as its pointwise minimum with the old bound (a cut), and as itself once that
  was answered and it fits.

A raise is held back (not sent) by ``deadband_a`` and ``min_interval_s`` (charger flash and
EV contactors), and a raise that does not fit waits for the next round: the EVSE stays at
its lower limit. Tokens tie each send to its answer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from ems.controller.belief import Bound, EvseBelief, profile_function
from ems.controller.budget import Budget, EvsePlace, Limits
from ems.domain import composite
from ems.domain.commands import ChargingSchedulePeriod, CommandStatus, SetChargingLimit
from ems.domain.composite import Hardware

EvseKey = tuple[str, int]
ProfileKey = tuple[str, int, int]
SAME_A = 0.05
"""Two limits within 0.05 A are the same (profiles carry 0.1 A steps)."""


class Kind(StrEnum):
    CUT = "cut"
    RAISE = "raise"
    MIXED = "mixed"
    STEP_DOWN = "step-down"
    """The pointwise minimum of a mixed change and the old bound: a cut sent ahead of it."""


@dataclass(frozen=True, slots=True)
class Desired:
    station_id: str
    command: SetChargingLimit
    session_id: str | None = None
    """For a TxProfile: the session it belongs to (nothing is sent once it has ended)."""

    @property
    def key(self) -> EvseKey:
        return (self.station_id, self.command.evse_id)

    @property
    def profile_key(self) -> ProfileKey:
        return (self.station_id, self.command.evse_id, self.command.profile_id)


@dataclass(frozen=True, slots=True)
class Send:
    token: int
    station_id: str
    command: SetChargingLimit
    kind: Kind
    session_id: str | None = None

    @property
    def key(self) -> EvseKey:
        return (self.station_id, self.command.evse_id)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    deadband_a: float = 1.0
    min_interval_s: float = 10.0
    refresh_before_end_s: float = 600.0
    """Re-send a profile with an end once less than this is left of it (15-min profiles: every 5 min)."""
    max_periods: int = 24


@dataclass
class Round:
    """The changes of one dispatch round, in the order they may go out."""

    now: datetime
    cuts: list[Desired] = field(default_factory=list)
    raises: list[Desired] = field(default_factory=list)
    mixed: list[Desired] = field(default_factory=list)
    stepped: set[EvseKey] = field(default_factory=set)
    if_accepted: dict[ProfileKey, tuple[int, Bound]] = field(default_factory=dict)
    """Per change (EVSE and profile id: an EVSE may have its default and its TxProfile in one round): the
    EVSE's bound once it is accepted, and the belief's version it was computed at (when classified)."""
    throttled: int = 0
    """Raises not sent this round (minimum interval, deadband): a later round sends them."""

    @property
    def pending(self) -> list[Desired]:
        return [*self.raises, *self.mixed]


class Dispatcher:
    def __init__(self, settings: DispatchSettings | None = None) -> None:
        self.settings = settings or DispatchSettings()
        self.beliefs: dict[EvseKey, EvseBelief] = {}
        self.fresh: set[tuple[str, int, int]] = set()
        """(station, evse, profile id) accepted since the station last connected or booted."""
        self.last_sent_s: dict[tuple[str, int, int], float] = {}
        """When each (station, evse, profile id) was last sent (monotonic s): raises wait ``min_interval_s``."""
        self._tokens = itertools.count(1)
        self._in_flight: dict[int, Send] = {}
        self._busy: dict[EvseKey, int] = {}
        """Sends in flight per EVSE."""

    # ------------------------------------------------------------ what the stations did

    def belief(self, station_id: str, evse_id: int, hw: Hardware) -> EvseBelief:
        key = (station_id, evse_id)
        b = self.beliefs.get(key)
        if b is None:
            b = self.beliefs[key] = EvseBelief(station_id, evse_id, hw)
        return b

    def connected(self, station_id: str) -> None:
        """A (re)connect: everything is sent again (the sent-profile cache of the station is reset)."""
        self.fresh = {f for f in self.fresh if f[0] != station_id}

    def rebooted(self, station_id: str) -> None:
        """A BootNotification: its transactions may have ended (their TxProfiles with them), or not."""
        self.connected(station_id)
        for (sid, _), b in self.beliefs.items():
            if sid == station_id:
                b.rebooted()

    def answered(self, send: Send, status: CommandStatus) -> None:
        if self._in_flight.pop(send.token, None) is not None:
            left = self._busy.get(send.key, 1) - 1
            if left > 0:
                self._busy[send.key] = left
            else:
                self._busy.pop(send.key, None)
        belief = self.beliefs.get(send.key)
        if belief is not None:
            belief.answered(send.token, status)
        if status is CommandStatus.ACCEPTED:
            self.fresh.add((send.station_id, send.command.evse_id, send.command.profile_id))

    def in_flight(self) -> list[Send]:
        return list(self._in_flight.values())

    # ------------------------------------------------------------ a round

    def classify(self, desired: Iterable[Desired], now: datetime, now_s: float) -> Round:
        out = Round(now)
        for d in desired:
            belief = self.beliefs.get(d.key)
            if belief is None:
                continue
            kind = self._change(d, belief, now, now_s, out)
            if kind is Kind.CUT:
                out.cuts.append(d)
            elif kind is Kind.RAISE:
                out.raises.append(d)
            elif kind is Kind.MIXED:
                out.mixed.append(d)
        return out

    def _change(self, d: Desired, belief: EvseBelief, now: datetime, now_s: float, rnd: Round) -> Kind | None:
        new = composite.from_command(d.command)
        relative = belief.tx_started_at or now
        fresh = (d.station_id, d.command.evse_id, d.command.profile_id) in self.fresh
        installed = belief.installed(d.command.profile_id)
        unchanged = (
            fresh
            and len(installed) == 1
            and (old := next(iter(installed))) is not None
            and _same(old, new, belief.hw, now, relative)
            and not self._refresh_due(old, now, relative)
        )
        if unchanged:
            return None
        before = belief.bound(now)
        after = belief.bound_if_accepted(new, now)
        rnd.if_accepted[d.profile_key] = (belief.version, after)
        if before.dominates(after, since=now):
            return Kind.CUT
        if not after.dominates(before, since=now):
            return Kind.MIXED  # lower somewhere: that part must go out, whatever the deadband
        if fresh and not self._raise_worth_it(now, now_s, d.key, installed, new, belief, relative):
            rnd.throttled += 1
            return None
        return Kind.RAISE

    def _refresh_due(self, old: composite.InstalledProfile, now: datetime, relative: datetime) -> bool:
        end = old.end(relative)
        return end is not None and (end - now).total_seconds() < self.settings.refresh_before_end_s

    def _raise_worth_it(
        self,
        now: datetime,
        now_s: float,
        key: EvseKey,
        installed: set[composite.InstalledProfile | None],
        new: composite.InstalledProfile,
        belief: EvseBelief,
        relative: datetime,
    ) -> bool:
        """A raise of a profile the station has: only past the minimum interval, and the deadband or a refresh."""
        old = next(iter(installed)) if len(installed) == 1 else None
        if old is None:
            return True  # the station does not have this profile yet
        last = self.last_sent_s.get((*key, new.id))
        if last is not None and now_s - last < self.settings.min_interval_s:
            return False
        if self._refresh_due(old, now, relative):
            return True
        # The deadband is about the profile itself (the bound may hide a change under the default).
        a = profile_function(old, belief.hw, now, relative)
        b = profile_function(new, belief.hw, now, relative)
        for t in _grid(now, a.times, b.times):
            x, y = a.at(t)[0], b.at(t)[0]
            if x == float("inf") and y != float("inf"):
                return True  # the old profile has ended there: the new one extends it
            if y - x > self.settings.deadband_a or x - y > SAME_A:
                return True
        return False

    def first_wave(self, rnd: Round) -> list[Send]:
        """The cuts: safe to send at once; those that lower what an EVSE may draw *now* the most go first."""
        order = sorted(rnd.cuts, key=lambda d: -self._drop_now_w(d, rnd))
        return [self._send(d, d.command, Kind.CUT, rnd.if_accepted.get(d.profile_key)) for d in order]

    def cuts(self, desired: Iterable[Desired], now: datetime) -> list[Send]:
        """Profiles built nowhere above their EVSE's bound (``fast_cut.py``): cuts by construction, sent as they
        are, in the order given, without weighing. While unanswered the EVSE stays counted at its bound (the
        higher of the two); an EVSE without a belief is skipped."""
        out: list[Send] = []
        for d in desired:
            belief = self.beliefs.get(d.key)
            if belief is not None:
                out.append(self._send(d, d.command, Kind.CUT, (belief.version, belief.bound(now))))
        return out

    def _drop_now_w(self, d: Desired, rnd: Round) -> float:
        """How much lower the EVSE's bound is now once ``d`` is accepted, in W (0: only later periods fall)."""
        entry = rnd.if_accepted.get(d.profile_key)
        belief = self.beliefs.get(d.key)
        if entry is None or belief is None:
            return 0.0
        (a, pa), (b, pb) = belief.bound(rnd.now).at(rnd.now), entry[1].at(rnd.now)
        top = belief.hw.max_current_a
        return max(0.0, (min(a, top) * pa - min(b, top) * pb) * belief.hw.voltage_v)

    def next_wave(self, rnd: Round, budget: Budget, places: Mapping[EvseKey, EvsePlace]) -> list[Send]:
        """Raises (and mixed changes) that fit now; mixed ones that do not fit go out as their step-down."""
        sends: list[Send] = []
        left: list[Desired] = []
        mixed = {id(d) for d in rnd.mixed}
        for d in rnd.pending:
            belief = self.beliefs[d.key]
            if self._busy.get(d.key):
                left.append(d)  # one change at a time per EVSE
                continue
            entry = rnd.if_accepted.get(d.profile_key)
            if entry is None or entry[0] != belief.version:  # something was sent or answered since: afresh
                entry = (belief.version, belief.bound_if_accepted(composite.from_command(d.command), rnd.now))
                rnd.if_accepted[d.profile_key] = entry
            if_accepted = entry[1]
            after = belief.bound(rnd.now).maximum(if_accepted, rnd.now)  # while unanswered: either
            place = places[d.key]
            if budget.fits(d.key, after, place):
                budget.book(d.key, after, place)
                sends.append(self._send(d, d.command, Kind.RAISE, entry))
            elif id(d) in mixed and d.key not in rnd.stepped:
                step = step_down(d.command, belief.bound(rnd.now), belief.hw, rnd.now, self.settings.max_periods)
                rnd.stepped.add(d.key)
                left.append(d)
                if step is not None:
                    sends.append(self._send(d, step, Kind.STEP_DOWN))
            else:
                left.append(d)  # may fit once this wave's cuts are answered
        rnd.raises = [d for d in left if id(d) not in mixed]
        rnd.mixed = [d for d in left if id(d) in mixed]
        return sends

    def _send(
        self, d: Desired, command: SetChargingLimit, kind: Kind, if_accepted: tuple[int, Bound] | None = None
    ) -> Send:
        send = Send(next(self._tokens), d.station_id, command, kind, d.session_id)
        self.beliefs[d.key].sent(send.token, composite.from_command(command), if_accepted)
        self._in_flight[send.token] = send
        self._busy[d.key] = self._busy.get(d.key, 0) + 1
        return send

    def mark_sent(self, send: Send, now_s: float) -> None:
        self.last_sent_s[(*send.key, send.command.profile_id)] = now_s

    # ------------------------------------------------------------ the invariant

    def budget(
        self, limits: Limits, places: Mapping[EvseKey, EvsePlace], now: datetime, rnd: Round | None = None
    ) -> Budget:
        """Every EVSE booked at its bound (in-flight sends counted at the higher of old and new)."""
        bounds = {k: b.bound(now) for k, b in self.beliefs.items() if k in places}
        times: set[datetime] = limits.breakpoints(now)
        for bound in bounds.values():
            times.update(t for t in bound.times if t >= now)
        if rnd is not None:
            for d in rnd.pending:
                entry = rnd.if_accepted.get(d.profile_key)
                if entry is not None:
                    times.update(t for t in entry[1].times if t >= now)
        budget = Budget(limits, times)
        for k, bound in bounds.items():
            budget.book(k, bound, places[k])
        return budget


def _grid(since: datetime, *times: Iterable[datetime]) -> list[datetime]:
    out = {since}
    for ts in times:
        out.update(t for t in ts if t > since)
    return sorted(out)


def _same(
    old: composite.InstalledProfile, new: composite.InstalledProfile, hw: Hardware, now: datetime, relative: datetime
) -> bool:
    """The same limits at every instant from ``now`` until the earlier of their ends."""
    if old.purpose != new.purpose or old.stack_level != new.stack_level or old.transaction_id != new.transaction_id:
        return False
    a = profile_function(old, hw, now, relative)
    b = profile_function(new, hw, now, relative)
    end_a, end_b = old.end(relative), new.end(relative)
    horizon = min((e for e in (end_a, end_b) if e is not None), default=None)
    for t in _grid(now, a.times, b.times):
        if horizon is not None and t >= horizon:
            break
        (x, px), (y, py) = a.at(t), b.at(t)
        if abs(x - y) > SAME_A and not (x == y == float("inf")):
            return False
        if px != py and min(x, y) > 0:
            return False
    return True


def step_down(
    command: SetChargingLimit, before: Bound, hw: Hardware, now: datetime, max_periods: int
) -> SetChargingLimit | None:
    """``command`` lowered to the old bound wherever that is lower: a profile that is nowhere a raise."""
    start = command.start_at or now
    new = composite.from_command(command)
    fn = profile_function(new, hw, now, start)
    end = new.end(start)
    points = [t for t in _grid(now, fn.times, before.times) if end is None or t < end]
    limits: list[tuple[datetime, float]] = []
    for t in points:
        a, _ = fn.at(t)
        b, _ = before.at(t)
        value = min(a, b)
        if value == float("inf"):
            continue
        limits.append((t, value))
    if not limits:
        return None
    while len(limits) > max_periods:  # merge the shortest pair, keeping the lower limit (never a raise)
        i = min(range(len(limits) - 1), key=lambda k: limits[k + 1][0] - limits[k][0])
        limits[i] = (limits[i][0], min(limits[i][1], limits[i + 1][1]))
        del limits[i + 1]
    phases = command.periods[0].number_phases if command.periods else None
    base = limits[0][0].replace(microsecond=0)
    periods: list[ChargingSchedulePeriod] = []
    for t, a in limits:
        value = a if command.rate_unit == "A" else a * hw.voltage_v * min(hw.phases, phases or hw.phases)
        value = math.floor(value * 10 + 1e-9) / 10  # round down to the 0.1 the wire carries
        if periods and periods[-1].limit == value:
            continue
        # Whole seconds on the wire: a lower limit starts early (floor), a higher one late (ceil).
        exact = (t - base).total_seconds()
        rising = bool(periods) and value > periods[-1].limit
        offset = 0 if not periods else (math.ceil(exact) if rising else math.floor(exact))
        if periods and offset <= periods[-1].start_offset_s:  # two changes within a second: keep the lower
            if value < periods[-1].limit:
                periods[-1] = replace(periods[-1], limit=value)
            continue
        periods.append(ChargingSchedulePeriod(start_offset_s=offset, limit=value, number_phases=phases))
    duration = None if end is None else math.floor((end - base).total_seconds())
    return replace(command, start_at=base, duration_s=duration, periods=tuple(periods))
