"""Site wiring compiled into phasor limits: line-to-line EVSEs and transformers.

A circuit's ``phase_limits_a`` bound its line currents. With line-to-neutral EVSEs only, a
line's current is the sum of the currents on that phase (all at one angle): a linear row,
kept as it is. An EVSE wired line-to-line (``EvseLimits.lines``, 208 V between L1 and L2)
draws ``I`` from ``lines[0]`` to ``lines[1]`` at the angle of that line-to-line voltage, so
line L1 carries ``I_12 - I_31`` (phasors 60 degrees apart): the line's current is a phasor
magnitude. A transformer changes the currents above it: behind a delta-wye transformer of
winding ratio ``n`` the primary line currents are ``(I_a - I_c) / n`` (and rotations), as in
acnportal's ``caltech_acn``; wye-wye and delta-delta divide by the ratio.

:func:`compile_wiring` turns the phase limits of every node above a line-to-line EVSE or a
transformer, and every transformer's primary limits, into :class:`CurrentLimit` rows (each
EVSE's contribution carried up through the transformers on its path), and clears those
nodes' per-phase limits (they would add line-to-neutral currents without the angles).
Limits with the same magnitude function (e.g. L1 and L2 of a pod wired L1-L2 alone) are
kept once. Ids: ``<node>:<line>`` and ``<circuit>:primary:<line>``.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ems.domain.units import ALL_PHASES, Phase
from ems.optimizer.phasor import PHASE_ANGLE_DEG, line_angle_deg
from ems.optimizer.snapshot import SITE_NODE_ID, CircuitLimits, CurrentLimit, EvseLimits, SiteLimits

Terms = dict[Phase, dict[tuple[str, float], float]]
"""Per line: (evse id, angle in degrees) -> coefficient."""


class Connection(StrEnum):
    DELTA_WYE = "delta-wye"
    WYE_WYE = "wye-wye"
    DELTA_DELTA = "delta-delta"


@dataclass(frozen=True, slots=True)
class Transformer:
    """A transformer feeding ``circuit`` (its secondary side): the circuit's ``phase_limits_a``
    bound the secondary lines, ``primary_phase_limits_a`` the primary ones.

    ``turns_ratio``: primary winding voltage over secondary winding voltage (480 V delta over
    120 V wye: 4, acnportal's Caltech ACN)."""

    circuit: str
    connection: Connection = Connection.DELTA_WYE
    turns_ratio: float = 1.0
    primary_phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wired:
    site: SiteLimits
    circuits: tuple[CircuitLimits, ...]
    current_limits: tuple[CurrentLimit, ...]


def wiring_problems(evses: Sequence[EvseLimits], circuits: Sequence[CircuitLimits], transformers: Sequence[Transformer]) -> list[str]:
    known = {c.id for c in circuits}
    out: list[str] = []
    seen: set[str] = set()
    for t in transformers:
        where = f"circuit {t.circuit}.transformer"
        if t.circuit not in known:
            out.append(f"{where}: {t.circuit!r} is not a circuit")
        if t.circuit in seen:
            out.append(f"{where}: more than one transformer")
        seen.add(t.circuit)
        if not (t.turns_ratio > 0 and math.isfinite(t.turns_ratio)):
            out.append(f"{where}: turns_ratio must be positive, got {t.turns_ratio}")
        out.extend(f"{where}: primary limit {q} must be >= 0, got {a}" for q, a in t.primary_phase_limits_a.items() if not a >= 0)
    return out


def compile_wiring(
    site: SiteLimits,
    circuits: Sequence[CircuitLimits],
    evses: Sequence[EvseLimits],
    transformers: Sequence[Transformer] = (),
) -> Wired:
    """The limits above (see the module docstring); the tree unchanged when nothing needs a phasor."""
    parent = {c.id: c.parent for c in circuits}
    by_circuit = {t.circuit: t for t in transformers}
    phase_limits: dict[str, Mapping[Phase, float]] = {SITE_NODE_ID: site.phase_limits_a}
    phase_limits.update({c.id: c.phase_limits_a for c in circuits})
    at_node: dict[str, Terms] = {}
    primary: dict[str, Terms] = {}
    phasor_nodes: set[str] = set()
    for e in evses:
        terms = _own_terms(e)
        node: str | None = e.circuit
        below_shift = e.lines is not None
        for _ in range(len(circuits) + 1):  # a cycle of parents is reported by Snapshot.problems()
            key = SITE_NODE_ID if node is None else node
            _add(at_node.setdefault(key, _empty()), terms)
            if below_shift:
                phasor_nodes.add(key)
            if node is None:
                break
            t = by_circuit.get(node)
            if t is not None:
                terms = _through(t, terms)
                _add(primary.setdefault(node, _empty()), terms)
                below_shift = True
            node = parent.get(node)
    limits: list[CurrentLimit] = []
    order = [SITE_NODE_ID, *(c.id for c in circuits)]
    for node in order:
        if node in phasor_nodes:
            limits.extend(_limits(node, phase_limits.get(node, {}), at_node.get(node, _empty())))
        t = by_circuit.get(node)
        if t is not None:
            limits.extend(_limits(f"{node}:primary", t.primary_phase_limits_a, primary.get(node, _empty())))
    cleared = tuple(replace(c, phase_limits_a={}) if c.id in phasor_nodes else c for c in circuits)
    new_site = replace(site, phase_limits_a={}) if SITE_NODE_ID in phasor_nodes else site
    return Wired(new_site, cleared, tuple(_unique(limits)))


def _empty() -> Terms:
    return {q: {} for q in ALL_PHASES}


def _own_terms(e: EvseLimits) -> Terms:
    out = _empty()
    if e.lines is not None:
        a, b = e.lines
        angle = line_angle_deg(a, b)
        out[a][(e.id, angle)] = 1.0
        out[b][(e.id, angle)] = -1.0
        return out
    for q in e.phase_map[: e.phases]:
        out[q][(e.id, PHASE_ANGLE_DEG[q])] = 1.0
    return out


def _add(into: Terms, terms: Terms) -> None:
    for q in ALL_PHASES:
        for key, coef in terms[q].items():
            into[q][key] = into[q].get(key, 0.0) + coef


def _through(t: Transformer, terms: Terms) -> Terms:
    """Line currents on the primary side from those on the secondary side."""
    n = t.turns_ratio
    a, b, c = ALL_PHASES
    if t.connection is Connection.DELTA_WYE:
        pairs = {a: (a, c), b: (b, a), c: (c, b)}
        out = _empty()
        for q, (plus, minus) in pairs.items():
            for key, coef in terms[plus].items():
                out[q][key] = out[q].get(key, 0.0) + coef / n
            for key, coef in terms[minus].items():
                out[q][key] = out[q].get(key, 0.0) - coef / n
        return out
    return {q: {key: coef / n for key, coef in terms[q].items()} for q in ALL_PHASES}


def _limits(prefix: str, limits: Mapping[Phase, float], terms: Terms) -> list[CurrentLimit]:
    out: list[CurrentLimit] = []
    for q in ALL_PHASES:
        if q not in limits:
            continue
        kept = tuple(
            (evse, coef, angle) for (evse, angle), coef in sorted(terms[q].items()) if abs(coef) > 1e-12
        )
        if kept:
            out.append(CurrentLimit(f"{prefix}:{q}", float(limits[q]), kept))
    return out


def _unique(limits: list[CurrentLimit]) -> list[CurrentLimit]:
    """Limits with a different magnitude function or limit (the first of equals kept)."""
    seen: set[tuple[object, ...]] = set()
    out: list[CurrentLimit] = []
    for c in limits:
        key = canonical(c)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def canonical(c: CurrentLimit) -> tuple[object, ...]:
    """A key equal for limits bounding the same magnitude: per EVSE and angle the complex
    coefficient, all rotated so that the first is real and positive (``|e^{ja} z| = |z|``)."""
    merged: dict[tuple[str, float], complex] = {}
    for evse, coef, angle in c.terms:
        key = (evse, round(angle % 360.0, 6))
        merged[key] = merged.get(key, 0j) + coef * cmath.exp(1j * math.radians(angle))
    items = sorted((k, v) for k, v in merged.items() if abs(v) > 1e-12)
    if not items:
        return (round(c.limit_a, 9),)
    turn = abs(items[0][1]) / items[0][1]
    return (
        round(c.limit_a, 9),
        *((k, round((v * turn).real, 9), round((v * turn).imag, 9)) for k, v in items),
    )
