"""Line currents as phasors in the controller: the exact worst case of a set of EVSE bounds (pure).

A site with line-to-line EVSEs or transformers (site file: ``lines``, ``transformer``) has
nodes whose phase limits bound a *phasor* sum (``ems.optimizer.wiring``): the current on a
line is ``|sum_i c_i I_i exp(j angle_i)|``. The geometry is the optimizer's
(:func:`ems.optimizer.wiring.evse_walk`); this module turns it into what the safety budget
needs.

Bounds, not setpoints: each EVSE draws anywhere between 0 and its bound. A line's current
is not monotone in each EVSE's current when its terms span more than 90 degrees (the
primary of a delta-wye transformer: up to 120), so the budget checks the **worst case over
the box** ``0 <= I_i <= bound_i``: the largest ``|z|`` over the zonotope spanned by the
terms. Every term's direction (its angle, plus 180 degrees for a negative coefficient) is a
multiple of 30 degrees (line-to-neutral angles 0, +-120, line-to-line 30, -90, 150, and
their opposites); per line the bounds are summed per direction (:data:`DIRECTIONS` weights,
linear: booked like the per-phase amps) and the worst case is
``max_k |sum over directions d within 90 degrees of phi_k of w_d u_d|`` over the 12
half-planes ``phi_k = 15 + 30 k`` degrees (the vertices of the zonotope; exact, see
docs/site-file.md). It is monotone in every weight, scales linearly with them, and equals
the plain magnitude ``|z|`` when the directions in use lie within 90 degrees of each other
(every line of a 208 V secondary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ems.domain.site import Circuit, EvseSpec, Site
from ems.domain.units import ALL_PHASES, Phase
from ems.optimizer.phasor import PHASE_ANGLE_DEG, same_angle
from ems.optimizer.snapshot import SITE_NODE_ID, CircuitLimits, CurrentLimit, EvseLimits, SiteLimits
from ems.optimizer.wiring import Connection, Transformer, compile_wiring, evse_walk

Array = npt.NDArray[np.float64]
DIRECTIONS = 12
"""Term directions: multiples of 30 degrees."""
_UNIT = np.exp(1j * np.radians(30.0 * np.arange(DIRECTIONS)))
_PHI = np.radians(15.0 + 30.0 * np.arange(DIRECTIONS))
_HALF: npt.NDArray[np.complex128] = (np.cos(np.radians(30.0 * np.arange(DIRECTIONS))[:, None] - _PHI[None, :]) > 0) * (
    _UNIT[:, None]
)
"""(direction, half-plane): ``u_d`` where direction ``d`` lies within 90 degrees of ``phi_k``, else 0."""

Term = tuple[int, int, float]
"""(EVSE phase index the term needs, direction, weight): A on the line per A of the EVSE's bound."""


def worst_a(weights: Array) -> Array:
    """Largest line current (A) over every draw within the bounds, from per-direction weights ``(..., 12)``."""
    w = np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(w).all(axis=-1)
    out: Array = np.abs(np.where(np.isfinite(w), w, 0.0) @ _HALF).max(axis=-1)
    return np.where(finite, out, math.inf)


def wired(site: Site) -> bool:
    """Does the site need phasor limits (a line-to-line EVSE or a transformer)?"""
    return any(c.transformer is not None for c in site.circuits) or any(
        e.lines is not None for st in site.stations for e in st.evses
    )


def transformers(site: Site) -> tuple[Transformer, ...]:
    return tuple(_transformer(c) for c in site.circuits if c.transformer is not None)


def _transformer(c: Circuit) -> Transformer:
    assert c.transformer is not None
    t = c.transformer
    return Transformer(c.id, Connection(t.connection), t.turns_ratio, dict(t.primary_phase_limits_a))


def evse_limits(key: str, spec: EvseSpec, circuit: str | None) -> EvseLimits:
    """The optimizer's view of one EVSE of the site file."""
    return EvseLimits(
        id=key,
        circuit=circuit,
        phases=spec.phases,
        phase_map=spec.phase_map,
        voltage_v=spec.voltage_v,
        min_a=spec.min_current_a,
        max_a=spec.max_current_a,
        lines=spec.lines,
    )


def site_evses(site: Site) -> list[EvseLimits]:
    return [evse_limits(f"{st.id}/{e.evse_id}", e, st.circuit_id) for st in site.stations for e in st.evses]


@dataclass(frozen=True, slots=True)
class Wiring:
    """A site's phasor structure: which nodes bound phasor sums and how each EVSE loads them."""

    circuits: tuple[CircuitLimits, ...]
    """The tree (parents only matter here)."""
    transformers: tuple[Transformer, ...]
    phasor_nodes: frozenset[str]
    evses: tuple[EvseLimits, ...]
    """The site file's EVSEs (compiled into the snapshot's limits with the planned ones)."""
    _terms: dict[tuple[str | None, tuple[Phase, ...], tuple[Phase, Phase] | None], dict[str, tuple[Term, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def row_limits(self, site: SiteLimits, circuits: Sequence[CircuitLimits]) -> dict[str, float]:
        """Row id (``<node>:<line>``, ``<circuit>:primary:<line>``, the optimizer's ids) -> limit (A)."""
        out: dict[str, float] = {}
        for node, limits in [(SITE_NODE_ID, site.phase_limits_a), *((c.id, c.phase_limits_a) for c in circuits)]:
            if node in self.phasor_nodes:
                out.update({f"{node}:{q}": float(a) for q, a in limits.items()})
        for t in self.transformers:
            out.update({f"{t.circuit}:primary:{q}": float(a) for q, a in t.primary_phase_limits_a.items()})
        return out

    def terms(
        self, circuit: str | None, phase_map: tuple[Phase, ...], lines: tuple[Phase, Phase] | None
    ) -> dict[str, tuple[Term, ...]]:
        """Per row id, an EVSE's terms (cached: one walk up the tree per kind of EVSE)."""
        key = (circuit, phase_map, lines)
        found = self._terms.get(key)
        if found is not None:
            return found
        e = EvseLimits(
            id="evse",
            circuit=circuit,
            phases=1 if lines is not None else len(phase_map),
            phase_map=phase_map if lines is None else (lines[0],),
            lines=lines,
        )
        walk = evse_walk(e, self.circuits, self.transformers)
        out: dict[str, tuple[Term, ...]] = {}
        for prefix, per_line in [
            *((node, t) for node, t in walk.at_node.items() if node in self.phasor_nodes),
            *((f"{node}:primary", t) for node, t in walk.primary.items()),
        ]:
            for q in ALL_PHASES:
                row = [_term(angle, coef, phase_map, lines) for (_, angle), coef in per_line[q].items()]
                row = [r for r in row if r[2] > 1e-12]
                if row:
                    out[f"{prefix}:{q}"] = tuple(row)
        self._terms[key] = out
        return out


def _term(angle: float, coef: float, phase_map: tuple[Phase, ...], lines: tuple[Phase, Phase] | None) -> Term:
    k = 0
    if lines is None:
        k = next((i for i, p in enumerate(phase_map) if same_angle(PHASE_ANGLE_DEG[p], angle)), 0)
    turn = angle + (180.0 if coef < 0 else 0.0)
    d = turn / 30.0
    if abs(d - round(d)) > 1e-6:
        raise ValueError(f"line current term at {angle} degrees is not a multiple of 30")
    return k, round(d) % DIRECTIONS, abs(coef)


def wiring_of(site: Site) -> Wiring | None:
    """The site's wiring, ``None`` when it has no line-to-line EVSE nor transformer (per-phase sums are exact)."""
    if not wired(site):
        return None
    cached = _CACHE.get(id(site))
    if cached is not None and cached[0] is site:
        return cached[1]
    circuits = tuple(CircuitLimits(id=c.id, parent=c.parent_id) for c in site.circuits)
    trs = transformers(site)
    evses = tuple(site_evses(site))
    nodes: set[str] = set()
    for e in evses:
        nodes |= evse_walk(e, circuits, trs).phasor_nodes
    out = Wiring(circuits, trs, frozenset(nodes), evses)
    if len(_CACHE) >= 64:  # a few sites in production; tests build many
        _CACHE.clear()
    _CACHE[id(site)] = (site, out)
    return out


_CACHE: dict[int, tuple[Site, Wiring]] = {}


def compile_snapshot_limits(
    wiring: Wiring, site: SiteLimits, circuits: Sequence[CircuitLimits], planned: Sequence[EvseLimits]
) -> tuple[SiteLimits, tuple[CircuitLimits, ...], tuple[CurrentLimit, ...]]:
    """The snapshot's tree (phase rows of phasor nodes cleared) and its current limits on the planned EVSEs.

    Compiled over the site file's EVSEs and the planned ones, so the phasor nodes and the rows are
    the same whoever is plugged in; terms of EVSEs not planned are dropped (the fixed loads among
    them are reserved by ``planning.reserve``)."""
    known = {e.id for e in planned}
    every = [*planned, *(e for e in wiring.evses if e.id not in known)]
    w = compile_wiring(site, circuits, every, wiring.transformers)
    limits = []
    for c in w.current_limits:
        terms = tuple(t for t in c.terms if t[0] in known)
        if terms:
            limits.append(CurrentLimit(c.id, c.limit_a, terms))
    return w.site, w.circuits, tuple(limits)


def fixed_weights(
    wiring: Wiring, loads: Sequence[tuple[str | None, tuple[Phase, ...], tuple[Phase, Phase] | None, float]]
) -> dict[str, Array]:
    """Per row, the per-direction weights of loads ``(circuit, phase_map, lines, A)`` at their bound on all phases."""
    out: dict[str, Array] = {}
    for circuit, phase_map, lines, amps in loads:
        for row, terms in wiring.terms(circuit, phase_map, lines).items():
            w = out.setdefault(row, np.zeros(DIRECTIONS))
            for _, d, weight in terms:
                w[d] += amps * weight
    return out


def fixed_reserve(limits: Sequence[CurrentLimit], weights: Mapping[str, Array]) -> tuple[CurrentLimit, ...]:
    """``limits`` lowered by the worst case of the fixed loads on each (``|z + f| <= |z| + worst(f)``)."""
    out = []
    for c in limits:
        w = weights.get(c.id)
        taken = float(worst_a(w)) if w is not None else 0.0
        out.append(CurrentLimit(c.id, max(0.0, c.limit_a - taken), c.terms))
    return tuple(out)


Draw = tuple[str | None, tuple[Phase, ...], tuple[Phase, Phase] | None, Sequence[float]]
"""A measured EVSE: its circuit, phase map, lines, and A on each of its own phases."""


def line_currents_a(wiring: Wiring | None, node: str, draws: Sequence[Draw]) -> dict[Phase, float]:
    """The line currents of ``node`` (:data:`SITE_NODE_ID`: the grid connection) for measured draws (A).

    Where ``node`` is a phasor node, the exact magnitudes of the phasor sums (through the transformers on the
    way); elsewhere (or on a site without wiring) the per-phase sums, which are exact there."""
    if wiring is None or node not in wiring.phasor_nodes:
        out = dict.fromkeys(ALL_PHASES, 0.0)
        for _, phase_map, _, amps in draws:
            for p, a in zip(phase_map, amps, strict=False):
                out[p] += a
        return out
    z = dict.fromkeys(ALL_PHASES, 0j)
    for circuit, phase_map, lines, amps in draws:
        terms = wiring.terms(circuit, phase_map, lines)
        for q in ALL_PHASES:
            for k, d, weight in terms.get(f"{node}:{q}", ()):
                if k < len(amps):
                    z[q] += amps[k] * weight * complex(_UNIT[d])
    return {q: abs(v) for q, v in z.items()}
