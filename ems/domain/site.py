"""A site's electrical topology: grid connection -> circuits (feeders, breakers) -> EVSEs.

The site is the root of a circuit tree. Every circuit has a parent (another circuit, or
``None`` for one hanging directly under the site connection), an optional power limit in
W and optional per-phase current limits in A. Stations sit on a circuit; each EVSE of a
station draws on 1 or 3 phases, mapped onto the grid phases by the installer's phase
rotation (a single-phase EVSE on L2, a three-phase one wired L2-L3-L1, ...).

``Site.problems()`` reports every inconsistency at once, so a bad site file is fixed in
one pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ems.domain.units import ALL_PHASES, IEC_61851_MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Phase

TRANSFORMER_CONNECTIONS = ("delta-wye", "wye-wye", "delta-delta")
"""Transformer connections a site file may name (``ems.optimizer.wiring.Connection``)."""


@dataclass(frozen=True, slots=True)
class TransformerSpec:
    """The transformer feeding a circuit: the circuit's ``phase_limits_a`` bound its secondary lines,
    ``primary_phase_limits_a`` its primary ones. ``turns_ratio``: primary over secondary winding voltage
    (480 V delta over 120 V wye: 4)."""

    connection: str = "delta-wye"
    turns_ratio: float = 1.0
    primary_phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)

    def problems(self, where: str) -> list[str]:
        out: list[str] = []
        if self.connection not in TRANSFORMER_CONNECTIONS:
            out.append(f"{where}: unknown connection {self.connection!r} (use {', '.join(TRANSFORMER_CONNECTIONS)})")
        if not (self.turns_ratio > 0 and math.isfinite(self.turns_ratio)):
            out.append(f"{where}: turns_ratio must be positive, got {self.turns_ratio}")
        out.extend(_limit_problems(where, self.primary_phase_limits_a))
        return out


@dataclass(frozen=True, slots=True)
class Circuit:
    id: str
    parent_id: str | None = None
    capacity_w: float | None = None
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)
    name: str = ""
    transformer: TransformerSpec | None = None
    """Set when the circuit is the secondary side of a transformer (phase-shifting line currents above it)."""


@dataclass(frozen=True, slots=True)
class EvseSpec:
    """One EVSE (OCPP 2.0.1 ``evseId``; OCPP 1.6 ``connectorId``) of a station."""

    evse_id: int
    phases: int = 3
    phase_map: tuple[Phase, ...] = ALL_PHASES
    """Grid phases this EVSE loads, in the order of its own L1, L2, L3 (length == phases)."""
    voltage_v: float = NOMINAL_VOLTAGE_V
    min_current_a: float = IEC_61851_MIN_CURRENT_A
    max_current_a: float = 32.0
    lines: tuple[Phase, Phase] | None = None
    """Set for a single-phase EVSE wired line-to-line (``voltage_v`` is then the line-to-line voltage,
    e.g. 208 V): its current flows from ``lines[0]`` to ``lines[1]``; ``phase_map`` is ``(lines[0],)``."""

    @property
    def max_power_w(self) -> float:
        return self.max_current_a * self.voltage_v * self.phases

    def problems(self, where: str) -> list[str]:
        out: list[str] = []
        if self.evse_id < 1:
            out.append(f"{where}: evse id must be >= 1, got {self.evse_id}")
        if self.phases not in (1, 3):
            out.append(f"{where}: phases must be 1 or 3, got {self.phases}")
        elif len(self.phase_map) != self.phases or len(set(self.phase_map)) != len(self.phase_map):
            out.append(f"{where}: phase_map must name {self.phases} distinct phase(s), got {list(self.phase_map)}")
        if self.lines is not None:
            if self.phases != 1:
                out.append(f"{where}: lines (a line-to-line evse) needs phases = 1, got {self.phases}")
            if len(self.lines) != 2 or len(set(self.lines)) != 2:
                out.append(f"{where}: lines must name two distinct lines, got {[str(p) for p in self.lines]}")
            elif self.phases == 1 and tuple(self.phase_map) != self.lines[:1]:
                out.append(f"{where}: phase_map of a line-to-line evse is its first line, got {list(self.phase_map)}")
        if self.voltage_v <= 0:
            out.append(f"{where}: voltage_v must be positive, got {self.voltage_v}")
        if self.min_current_a < 0 or self.max_current_a <= 0:
            out.append(f"{where}: currents must be positive (min {self.min_current_a}, max {self.max_current_a})")
        elif self.min_current_a > self.max_current_a:
            out.append(f"{where}: min_current_a {self.min_current_a} exceeds max_current_a {self.max_current_a}")
        return out


@dataclass(frozen=True, slots=True)
class StationSpec:
    """Where a station sits in the site and what its EVSEs can do (from the site file)."""

    id: str
    circuit_id: str | None = None
    evses: tuple[EvseSpec, ...] = (EvseSpec(evse_id=1),)


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str = ""
    timezone: str = "UTC"
    """IANA zone of the site, for time-of-use tariffs and display; everything inside is UTC."""
    capacity_w: float | None = None
    """Static limit of the grid connection, in W. ``None``: unlimited until a signal says otherwise."""
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)
    failsafe_capacity_w: float | None = None
    """What the site may draw when the grid signal goes stale or the controller is unsure."""
    stale_after_s: float = 900.0
    circuits: tuple[Circuit, ...] = ()
    stations: tuple[StationSpec, ...] = ()

    def circuit(self, circuit_id: str) -> Circuit:
        for c in self.circuits:
            if c.id == circuit_id:
                return c
        raise KeyError(circuit_id)

    def station(self, station_id: str) -> StationSpec | None:
        return next((s for s in self.stations if s.id == station_id), None)

    def children(self, circuit_id: str | None) -> Iterator[Circuit]:
        """Circuits whose parent is ``circuit_id`` (``None``: the site connection)."""
        return (c for c in self.circuits if c.parent_id == circuit_id)

    def ancestors(self, circuit_id: str) -> list[str]:
        """``circuit_id`` and every circuit above it, nearest first (the site itself excluded)."""
        by_id = {c.id: c for c in self.circuits}
        chain: list[str] = []
        current: str | None = circuit_id
        while current is not None and current not in chain:
            chain.append(current)
            parent = by_id.get(current)
            current = parent.parent_id if parent else None
        return chain

    def problems(self) -> list[str]:
        """Every inconsistency in the topology, each a sentence naming where it is."""
        out: list[str] = []
        if not self.id:
            out.append("site: id must not be empty")
        if self.capacity_w is not None and self.capacity_w < 0:
            out.append(f"site {self.id}: capacity_w must not be negative, got {self.capacity_w}")
        if self.failsafe_capacity_w is not None and self.failsafe_capacity_w < 0:
            out.append(f"site {self.id}: failsafe_capacity_w must not be negative")
        if self.stale_after_s <= 0:
            out.append(f"site {self.id}: stale_after_s must be positive, got {self.stale_after_s}")
        out.extend(_limit_problems(f"site {self.id}", self.phase_limits_a))
        ids = [c.id for c in self.circuits]
        known = set(ids)
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            out.append(f"circuit {dup}: defined more than once")
        for c in self.circuits:
            if c.parent_id is not None and c.parent_id not in known:
                out.append(f"circuit {c.id}: parent {c.parent_id!r} is not a circuit of this site")
            if c.capacity_w is not None and c.capacity_w < 0:
                out.append(f"circuit {c.id}: capacity_w must not be negative, got {c.capacity_w}")
            out.extend(_limit_problems(f"circuit {c.id}", c.phase_limits_a))
            if c.transformer is not None:
                out.extend(c.transformer.problems(f"circuit {c.id}.transformer"))
            chain = self.ancestors(c.id)
            last = self.circuits[ids.index(chain[-1])] if chain[-1] in known else None
            if last is not None and last.parent_id in chain:
                out.append(f"circuit {c.id}: parent chain forms a cycle ({' -> '.join(chain)})")
        sids = [s.id for s in self.stations]
        for dup in sorted({i for i in sids if sids.count(i) > 1}):
            out.append(f"station {dup}: defined more than once")
        for s in self.stations:
            if s.circuit_id is not None and s.circuit_id not in known:
                out.append(f"station {s.id}: circuit {s.circuit_id!r} is not a circuit of this site")
            evse_ids = [e.evse_id for e in s.evses]
            if len(set(evse_ids)) != len(evse_ids):
                out.append(f"station {s.id}: evse ids repeat: {evse_ids}")
            for e in s.evses:
                out.extend(e.problems(f"station {s.id} evse {e.evse_id}"))
        return out


def _limit_problems(where: str, limits: Mapping[Phase, float]) -> list[str]:
    return [f"{where}: phase limit {p} must not be negative, got {a}" for p, a in limits.items() if not a >= 0]


DEFAULT_SITE_ID = "default"


def default_site() -> Site:
    """The site used when no site file is given: one unconstrained connection, id ``default``."""
    return Site(id=DEFAULT_SITE_ID, name="Default site")
