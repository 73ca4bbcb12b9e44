"""The optimizer's input: a frozen snapshot of a site over a planning horizon.

The controller (or ``ems optimize`` from a JSON instance) builds a :class:`Snapshot`; the
optimizer never sees live objects, a clock or a database. Time is discretised into
``slots`` slots of ``slot_s`` seconds from ``start`` (timezone-aware UTC).

The circuit tree: the site's grid connection is the root (node id :data:`SITE_NODE_ID`);
every circuit has a parent circuit or ``None`` (directly under the site); every EVSE sits
on a circuit or directly under the site. Limits: a power limit in W (constant or one value
per slot: the grid operator's forecast) and per-phase current limits in A.

Line currents as phasors: an EVSE wired line-to-line (``EvseLimits.lines``, e.g. 208 V
between L1 and L2 behind a US transformer) draws a current whose phase angle differs from
every line-to-neutral one, so the current on a line is the magnitude of a phasor sum. Such
limits are :class:`CurrentLimit` rows (second-order cones), planned by the LP through an
inner polygon (``ems.optimizer.phasor``, docs/optimizer.md "Line currents as phasors").

Units: W, Wh, A, V, seconds. ``Snapshot.problems()`` lists every inconsistency at once.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ems.domain.units import ALL_PHASES, IEC_61851_MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Phase
from ems.errors import InvalidInput

SITE_NODE_ID = "site"
"""Node id of the site's grid connection (the root of the circuit tree) in outputs."""


@dataclass(frozen=True, slots=True)
class SiteLimits:
    """The grid connection: ``capacity_w`` per slot (``None``: unlimited), per-phase A limits.

    ``base_load_w`` (other consumers behind the connection) and ``pv_w`` (on-site
    generation) are per-slot forecasts; EVs may use ``capacity_w - base_load_w + pv_w``.
    They count against the W limit only: ``phase_limits_a`` bound the EVs' current alone.
    """

    capacity_w: tuple[float, ...] | None = None
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)
    base_load_w: tuple[float, ...] | None = None
    pv_w: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class CircuitLimits:
    """A feeder or breaker. ``parent`` is another circuit id, or ``None`` for the site."""

    id: str
    parent: str | None = None
    capacity_w: tuple[float, ...] | None = None
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvseLimits:
    """One EVSE. ``phase_map`` names the grid phases its own L1(, L2, L3) are wired to.

    ``lines``: set for a single-phase EVSE wired line-to-line (``voltage_v`` is then the
    line-to-line voltage, e.g. 208 V): its current flows from ``lines[0]`` to ``lines[1]``
    at the angle of that line-to-line voltage. It loads no per-phase row of the circuit
    tree (those add line-to-neutral currents, all at one angle per phase); the limits on
    the lines it loads are :class:`CurrentLimit` rows (``ems.optimizer.wiring`` compiles a
    circuit's ``phase_limits_a`` into them).
    """

    id: str
    circuit: str | None = None
    phases: int = 3
    phase_map: tuple[Phase, ...] = ALL_PHASES
    voltage_v: float = NOMINAL_VOLTAGE_V
    min_a: float = IEC_61851_MIN_CURRENT_A
    max_a: float = 32.0
    lines: tuple[Phase, Phase] | None = None


@dataclass(frozen=True, slots=True)
class CurrentLimit:
    """A limit on the magnitude of a sum of EVSE current phasors (A).

    Each term is ``(evse_id, coefficient, angle_deg)``; with ``I_e >= 0`` the current of
    EVSE ``e`` (its pilot setpoint, A per phase it draws on), the constraint is
    ``|sum coefficient * I_e * exp(j * radians(angle_deg))| <= limit_a``. One EVSE may appear
    in several terms (e.g. at two angles behind a delta-wye transformer). A term on a
    3-phase EVSE whose angle is that of one of its grid phases (0, -120, 120 degrees for
    L1, L2, L3) counts only for sessions drawing on that phase (a 1-phase EV loads its
    EVSE's first phase alone); any other term counts for every session at the EVSE.
    This is acnportal's constraint row (``ChargingNetwork.add_constraint``) one to one.
    """

    id: str
    limit_a: float
    terms: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True, slots=True)
class SessionDemand:
    """An EV plugged in (or expected) at an EVSE.

    ``energy_wh`` is the total the driver asked for, ``delivered_wh`` what it already got;
    the optimizer plans the rest. ``max_w`` is the EV's own limit; ``phases`` the phases the
    EV charges on (``None``: all of the EVSE's; a 1-phase EV on a 3-phase EVSE loads the
    EVSE's L1). Higher ``priority`` is served first. ``observed_a``/``observed_phases``/
    ``allotted_a``: what the EV actually takes (see ``ems.optimizer.draw``).
    """

    id: str
    evse: str
    arrival: datetime
    departure: datetime
    energy_wh: float
    delivered_wh: float = 0.0
    max_w: float | None = None
    phases: int | None = None
    priority: int = 0
    observed_a: float | None = None
    """What the EV drew at its last meter reading: the highest of its per-phase currents (A).
    ``None``: no reading yet (the EV is planned at what its EVSE and ``max_w`` allow)."""
    observed_phases: int | None = None
    """Phases the EV drew on at that reading (1-3; 0: it drew nothing)."""
    allotted_a: float | None = None
    """The per-phase limit the EV had at that reading (what it was allowed to draw), if known."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    start: datetime
    slot_s: int
    slots: int
    site: SiteLimits = field(default_factory=SiteLimits)
    circuits: tuple[CircuitLimits, ...] = ()
    evses: tuple[EvseLimits, ...] = ()
    sessions: tuple[SessionDemand, ...] = ()
    prices: tuple[float, ...] | None = None
    """Energy price per slot, currency per kWh (only the shape matters to the optimizer)."""
    current_limits: tuple[CurrentLimit, ...] = ()
    """Phasor (line-current) limits, on top of the circuit tree's W and per-phase A limits."""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.slot_s * self.slots)

    def slot_start(self, slot: int) -> datetime:
        return self.start + timedelta(seconds=self.slot_s * slot)

    def problems(self) -> list[str]:
        """Every inconsistency, each a sentence naming where it is (empty: valid)."""
        out: list[str] = []
        if self.start.tzinfo is None:
            out.append("start: must be timezone-aware (UTC)")
        if self.slot_s <= 0:
            out.append(f"slot_s: must be positive, got {self.slot_s}")
        if self.slots <= 0:
            out.append(f"slots: must be positive, got {self.slots}")
        out.extend(_series_problems("site.capacity_w", self.site.capacity_w, self.slots))
        out.extend(_series_problems("site.base_load_w", self.site.base_load_w, self.slots))
        out.extend(_series_problems("site.pv_w", self.site.pv_w, self.slots))
        out.extend(_phase_problems("site", self.site.phase_limits_a))
        out.extend(_series_problems("prices", self.prices, self.slots, allow_negative=True))
        out.extend(self._circuit_problems())
        out.extend(self._evse_problems())
        out.extend(self._session_problems())
        out.extend(self._current_limit_problems())
        return out

    def validate(self) -> Snapshot:
        """Return ``self``, or raise :class:`InvalidInput` listing every problem."""
        problems = self.problems()
        if problems:
            raise InvalidInput("invalid optimizer snapshot", problems)
        return self

    def _circuit_problems(self) -> list[str]:
        out: list[str] = []
        ids = [c.id for c in self.circuits]
        known = set(ids)
        out.extend(f"circuit {d}: defined more than once" for d in _repeated(ids))
        parents = {c.id: c.parent for c in self.circuits}
        for c in self.circuits:
            where = f"circuit {c.id}"
            if not c.id or c.id == SITE_NODE_ID:
                out.append(f"{where}: id must be non-empty and not {SITE_NODE_ID!r}")
            if c.parent is not None and c.parent not in known:
                out.append(f"{where}: parent {c.parent!r} is not a circuit")
            out.extend(_series_problems(f"{where}.capacity_w", c.capacity_w, self.slots))
            out.extend(_phase_problems(where, c.phase_limits_a))
            seen = {c.id}
            up = c.parent
            while up is not None and up in parents:
                if up in seen:
                    out.append(f"{where}: parent chain forms a cycle")
                    break
                seen.add(up)
                up = parents[up]
        return out

    def _evse_problems(self) -> list[str]:
        out: list[str] = []
        ids = [e.id for e in self.evses]
        out.extend(f"evse {d}: defined more than once" for d in _repeated(ids))
        circuits = {c.id for c in self.circuits}
        for e in self.evses:
            where = f"evse {e.id}"
            if e.circuit is not None and e.circuit not in circuits:
                out.append(f"{where}: circuit {e.circuit!r} is not a circuit")
            if e.lines is not None and (e.phases != 1 or len(e.lines) != 2 or e.lines[0] == e.lines[1]):
                out.append(f"{where}: a line-to-line evse has phases 1 and two distinct lines, got {list(e.lines)}")
            if e.phases not in (1, 3):
                out.append(f"{where}: phases must be 1 or 3, got {e.phases}")
            elif len(e.phase_map) != e.phases or len(set(e.phase_map)) != e.phases:
                out.append(f"{where}: phase map must name {e.phases} distinct phase(s), got {list(e.phase_map)}")
            if not e.voltage_v > 0:
                out.append(f"{where}: voltage_v must be positive, got {e.voltage_v}")
            if not e.max_a > 0:
                out.append(f"{where}: max_a must be positive, got {e.max_a}")
            if not 0 <= e.min_a <= e.max_a:
                out.append(f"{where}: min_a must be within [0, max_a], got {e.min_a}")
        return out

    def _session_problems(self) -> list[str]:
        out: list[str] = []
        ids = [s.id for s in self.sessions]
        out.extend(f"session {d}: defined more than once" for d in _repeated(ids))
        evses = {e.id: e for e in self.evses}
        by_evse: dict[str, list[SessionDemand]] = {}
        for s in self.sessions:
            where = f"session {s.id}"
            evse = evses.get(s.evse)
            if evse is None:
                out.append(f"{where}: evse {s.evse!r} is not an evse")
            else:
                by_evse.setdefault(s.evse, []).append(s)
                if s.phases is not None and s.phases not in (1, evse.phases):
                    out.append(f"{where}: phases must be 1 or {evse.phases} (the evse's), got {s.phases}")
            if s.arrival.tzinfo is None or s.departure.tzinfo is None:
                out.append(f"{where}: arrival and departure must be timezone-aware (UTC)")
            elif s.departure <= s.arrival:
                out.append(f"{where}: departure {s.departure.isoformat()} is not after arrival")
            if not s.energy_wh >= 0:
                out.append(f"{where}: energy_wh must not be negative, got {s.energy_wh}")
            if not s.delivered_wh >= 0:
                out.append(f"{where}: delivered_wh must not be negative, got {s.delivered_wh}")
            if s.max_w is not None and not s.max_w > 0:
                out.append(f"{where}: max_w must be positive, got {s.max_w}")
            if s.observed_a is not None and not s.observed_a >= 0:
                out.append(f"{where}: observed_a must not be negative, got {s.observed_a}")
            if s.allotted_a is not None and not s.allotted_a >= 0:
                out.append(f"{where}: allotted_a must not be negative, got {s.allotted_a}")
            if s.observed_phases is not None and s.observed_phases not in (0, 1, 2, 3):
                out.append(f"{where}: observed_phases must be 0-3, got {s.observed_phases}")
        for evse_id, group in by_evse.items():
            if any(s.arrival.tzinfo is None or s.departure.tzinfo is None for s in group):
                continue
            group.sort(key=lambda s: s.arrival)
            out.extend(
                f"session {b.id}: overlaps session {a.id} on evse {evse_id}"
                for a, b in itertools.pairwise(group)
                if b.arrival < a.departure
            )
        return out


    def _current_limit_problems(self) -> list[str]:
        out: list[str] = []
        ids = [c.id for c in self.current_limits]
        out.extend(f"current limit {d}: defined more than once" for d in _repeated(ids))
        evses = {e.id for e in self.evses}
        for c in self.current_limits:
            where = f"current limit {c.id}"
            if not c.id:
                out.append(f"{where}: id must be non-empty")
            if not (c.limit_a >= 0 and math.isfinite(c.limit_a)):
                out.append(f"{where}: limit_a must be finite and >= 0, got {c.limit_a}")
            if not c.terms:
                out.append(f"{where}: needs at least one term (evse, coefficient, angle_deg)")
            for evse, coef, angle in c.terms:
                if evse not in evses:
                    out.append(f"{where}: evse {evse!r} is not an evse")
                if not (math.isfinite(coef) and math.isfinite(angle)):
                    out.append(f"{where}: coefficient and angle of {evse!r} must be finite, got {coef}, {angle}")
        return out


def _repeated(ids: list[str]) -> list[str]:
    return sorted(i for i, count in Counter(ids).items() if count > 1)


def _series_problems(
    where: str, values: tuple[float, ...] | None, slots: int, *, allow_negative: bool = False
) -> list[str]:
    if values is None:
        return []
    out: list[str] = []
    if len(values) != slots:
        out.append(f"{where}: needs one value per slot ({slots}), got {len(values)}")
    bad = [i for i, v in enumerate(values) if v != v or v in (float("inf"), float("-inf"))]
    if not allow_negative:
        bad.extend(i for i, v in enumerate(values) if v < 0)
    if bad:
        out.append(f"{where}: values must be finite{'' if allow_negative else ' and >= 0'} (slots {sorted(bad)[:5]})")
    return out


def _phase_problems(where: str, limits: Mapping[Phase, float]) -> list[str]:
    return [f"{where}: phase limit {p} must be >= 0, got {a}" for p, a in limits.items() if not a >= 0]
