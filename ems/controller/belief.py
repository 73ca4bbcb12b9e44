"""What the controller knows each EVSE has installed, and so the most it may draw (pure).

A station tells the controller what it did only by answering. Until the answer, and for
ever after an answer that says nothing (TIMEOUT, OFFLINE: the message may have been
applied or lost), both are possible. ``EvseBelief`` therefore keeps every *possible world*
(set of installed profiles, ``ems.domain.composite`` rules) for its EVSE, and the profiles
still in flight:

==========================  ==========================================================
answer                      the worlds afterwards
==========================  ==========================================================
sent, no answer yet         each world, with and without the profile
ACCEPTED                    each world with the profile
REJECTED / NOT_SUPPORTED    unchanged (the previous profile stays in force)
TIMEOUT / OFFLINE           each world, with and without the profile (until a later
                            answer to the same profile id settles it)
==========================  ==========================================================

Profiles reuse one id per EVSE and purpose, so a later accepted profile collapses the
worlds again. A transaction that ends takes its TxProfiles with it; a reboot ends every
transaction (profiles other than TxProfiles persist, as stations keep them in
non-volatile memory).

The **bound** of an EVSE at an instant is the highest composite limit over its worlds, for
the transaction the controller believes is running *and* for none at all: a transaction
can end at any moment (the driver leaves, the station reboots) and the next car then gets
the TxDefaultProfile, before the controller hears of either. It is a piecewise-constant
function of time, cached per belief.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ems.domain import composite
from ems.domain.commands import CommandStatus
from ems.domain.composite import Hardware, InstalledProfile

World = tuple[InstalledProfile, ...]
DEFINITE_NO = frozenset({CommandStatus.REJECTED, CommandStatus.NOT_SUPPORTED})


@dataclass(frozen=True, slots=True)
class Bound:
    """A piecewise-constant limit: ``current_a[i]`` A per phase on ``phases[i]`` phases from ``times[i]`` on."""

    times: tuple[datetime, ...]
    current_a: tuple[float, ...]
    phases: tuple[int, ...]

    def at(self, t: datetime) -> tuple[float, int]:
        i = max(0, bisect.bisect_right(self.times, t) - 1)
        return self.current_a[i], self.phases[i]

    def maximum(self, other: Bound, since: datetime) -> Bound:
        """The pointwise higher of two bounds, from ``since`` on."""
        times = _points(since, self.times, other.times)
        amps: list[float] = []
        phases: list[int] = []
        for t in times:
            a, pa = self.at(t)
            b, pb = other.at(t)
            amps.append(max(a, b))
            phases.append(max(pa if a > 0 else 1, pb if b > 0 else 1))
        return Bound(tuple(times), tuple(amps), tuple(phases))

    def dominates(self, other: Bound, *, since: datetime, tolerance_a: float = 1e-6) -> bool:
        """True when ``self`` is at least ``other`` at every instant from ``since`` on (A and phases)."""
        for t in _points(since, self.times, other.times):
            a, pa = self.at(t)
            b, pb = other.at(t)
            if b > a + tolerance_a or (b > tolerance_a and pb > pa):
                return False
        return True


def _points(since: datetime, *times: Iterable[datetime]) -> list[datetime]:
    out = {since}
    for ts in times:
        out.update(t for t in ts if t > since)
    return sorted(out)


@dataclass
class EvseBelief:
    station_id: str
    evse_id: int
    hw: Hardware
    worlds: set[World] = field(default_factory=lambda: {()})
    in_flight: dict[int, InstalledProfile] = field(default_factory=dict)
    """Sends awaiting an answer, by send token."""
    tx_id: str | None = None
    tx_started_at: datetime | None = None
    version: int = 0
    """Bumped by every change of what the EVSE may have (a send, an answer, a transaction, a boot): a bound
    computed at one version says nothing about another."""
    _cache: tuple[object, datetime, Bound] | None = None

    # ------------------------------------------------------------ what happened

    def sent(self, token: int, profile: InstalledProfile, if_accepted: tuple[int, Bound] | None = None) -> None:
        """``profile`` went out. ``if_accepted``: ``(version, bound)``, the bound once it is accepted as computed
        at ``version``; it saves a recomputation only if nothing changed since (another profile sent meanwhile
        adds worlds the bound does not cover)."""
        cached = self._cache
        known = if_accepted[1] if if_accepted is not None and if_accepted[0] == self.version else None
        before_key = self._key() if known is not None and cached is not None else None
        self.in_flight[token] = profile
        self.version += 1
        if known is not None and cached is not None and cached[0] == before_key:
            since = cached[1]
            # A cut sent with the bound itself as ``if_accepted`` leaves the bound as it is.
            bound = cached[2] if known is cached[2] else cached[2].maximum(known, since)
            self._cache = (self._key(), since, bound)

    def _key(self) -> object:
        return (frozenset(self.possible()), self.tx_id, self.tx_started_at)

    def answered(self, token: int, status: CommandStatus) -> None:
        profile = self.in_flight.pop(token, None)
        if profile is None:
            return
        self.version += 1
        if status is CommandStatus.ACCEPTED:
            self.worlds = {composite.install(w, profile) for w in self.worlds}
        elif status not in DEFINITE_NO:
            self.worlds |= {composite.install(w, profile) for w in self.worlds}

    def transaction(self, tx_id: str | None, started_at: datetime | None) -> None:
        """The transaction the controller believes runs on this EVSE (``None``: none)."""
        if tx_id != self.tx_id and self.tx_id is not None:
            self.worlds = {composite.end_transaction(w, self.evse_id, self.tx_id) for w in self.worlds}
        if (tx_id, started_at) != (self.tx_id, self.tx_started_at):
            self.version += 1
        self.tx_id, self.tx_started_at = tx_id, started_at

    def rebooted(self) -> None:
        """A BootNotification: its transactions may have ended (their TxProfiles with them), or not."""
        self.worlds |= {composite.end_transaction(w) for w in self.worlds}
        self.version += 1

    # ------------------------------------------------------------ what it may apply

    def bound_if_accepted(self, profile: InstalledProfile, since: datetime) -> Bound:
        """The bound once ``profile`` is accepted (and everything else in flight settled either way)."""
        worlds = {composite.install(w, profile) for w in self.possible()}
        return self._compute(worlds, since)

    def possible(self, extra: InstalledProfile | None = None) -> set[World]:
        worlds = set(self.worlds)
        for p in (*self.in_flight.values(), *((extra,) if extra is not None else ())):
            worlds |= {composite.install(w, p) for w in worlds}
        return worlds

    def installed(self, profile_id: int) -> set[InstalledProfile | None]:
        """The profile with ``profile_id`` in each world (``None``: absent); in-flight sends count."""
        return {next((p for p in w if p.id == profile_id), None) for w in self.possible()}

    def certain(self) -> bool:
        return len(self.worlds) == 1 and not self.in_flight

    def bound(self, since: datetime, extra: InstalledProfile | None = None) -> Bound:
        """The most this EVSE may apply at any instant from ``since`` on (with ``extra`` also sent)."""
        worlds = self.possible(extra)
        key = (frozenset(worlds), self.tx_id, self.tx_started_at) if extra is None else None
        if extra is None and self._cache is not None and self._cache[0] == key and self._cache[1] <= since:
            return self._cache[2]
        bound = self._compute(worlds, since)
        if extra is None:
            self._cache = (key, since, bound)
        return bound

    def _compute(self, worlds: set[World], since: datetime) -> Bound:
        relative = self.tx_started_at or since
        points: set[datetime] = {since}
        far = since + timedelta(days=366)
        for w in worlds:
            points |= composite.breakpoints(
                (p for p in w if p.start_at is not None or self.tx_started_at is not None), relative, since, far
            )
        times = sorted(points)
        amps: list[float] = []
        phases: list[int] = []
        txs: list[tuple[str | None, datetime | None]] = [(None, None)]
        if self.tx_id is not None:
            txs.append((self.tx_id, self.tx_started_at))
        for t in times:
            a, n = 0.0, 1
            for w in worlds:
                for tx_id, started in txs:
                    limit = composite.evse_limit(
                        w, evse_id=self.evse_id, t=t, hw=self.hw, tx_id=tx_id, tx_started_at=started
                    )
                    a = max(a, limit.current_a)
                    if limit.current_a > 0:
                        n = max(n, limit.phases)
            amps.append(a)
            phases.append(n)
        return Bound(tuple(times), tuple(amps), tuple(phases))


def profile_function(p: InstalledProfile, hw: Hardware, since: datetime, relative: datetime) -> Bound:
    """One profile alone, as A per phase (``inf`` where it is not in effect), from ``since`` on."""
    times = sorted({since} | composite.breakpoints([p], relative, since, since + timedelta(days=366)))
    amps: list[float] = []
    phases: list[int] = []
    for t in times:
        period = p.period_at(t, relative)
        if period is None:
            amps.append(float("inf"))
            phases.append(hw.phases)
        else:
            amps.append(composite.amps(period, p.rate_unit, hw))
            phases.append(min(hw.phases, period.number_phases or hw.phases))
    return Bound(tuple(times), tuple(amps), tuple(phases))
