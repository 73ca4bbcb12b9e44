"""Why a session got less than it asked for, and which soft goals could not hold.

``limited_by`` (per session, most frequent first):

- ``request``: fully served — its own request was the only limit;
- ``own_max``: it charged at its own maximum (EV or EVSE) in some slots;
- ``site`` / ``circuit:<id>``: a W limit on its path was full;
- ``phase:<node>:<L1|L2|L3>``: a per-phase current limit on its path was full;
- ``window``: its window holds no whole slot of the horizon;
- ``min_current``: paused because the headroom was below its minimum current;
- ``priority``: headroom was there but the algorithm gave it to others (heuristics).

Soft violations (the schedule is still within every hard limit):

- ``base_load_over_capacity``: base load minus PV alone exceeds the site capacity;
- ``min_current_unserved``: a node's limit is below the sum of the minimum currents of the
  sessions under it that still want energy, so some of them are paused.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ems.domain.units import ALL_PHASES
from ems.optimizer.problem import Floats, Problem
from ems.optimizer.schedule import Violation

TIGHT_REL = 1e-5
TIGHT_ABS_KW = 1e-4
"""A limit counts as full within 0.1 W + 10 ppm: above LP round-off (~1e-7 kW)."""


def limited_by(p: Problem, x: Floats, unmet_kwh: Floats) -> tuple[tuple[str, ...], ...]:
    """Per session, the reasons described above (``x`` in kW, sessions x slots)."""
    load = p.incidence @ x
    tight_w = load >= p.node_cap_kw - (TIGHT_ABS_KW + TIGHT_REL * np.abs(np.minimum(p.node_cap_kw, 1e12)))
    tight_a = np.zeros((p.node_cap_kw.shape[0], 3, p.slots), dtype=bool)
    for q in range(3):
        limit = p.node_phase_a[:, q, None]
        if np.isfinite(limit).any():
            amps = p.incidence @ (p.amps_per_kw[:, q, None] * x)
            tight_a[:, q] = amps >= limit - (1e-3 + TIGHT_REL * np.abs(np.minimum(limit, 1e12)))
    by_session = p.incidence.T.tocsr()
    active = p.active()
    tol = 1e-6 * np.maximum(p.need_kwh, 1.0) + 1e-3 * p.slot_h * 1e-3
    out: list[tuple[str, ...]] = []
    for i in range(p.n):
        if unmet_kwh[i] <= tol[i]:
            out.append(("request",))
            continue
        slots = np.flatnonzero(active[i])
        if slots.size == 0:
            out.append(("window",))
            continue
        nodes = by_session.indices[by_session.indptr[i] : by_session.indptr[i + 1]]
        reasons: Counter[str] = Counter()
        at_max = x[i, slots] >= p.max_kw[i] - TIGHT_ABS_KW
        reasons["own_max"] += int(at_max.sum())
        below = slots[~at_max]
        if below.size:
            w_hits = tight_w[np.ix_(nodes, below)]
            explained = w_hits.any(axis=0)
            for k, hits in zip(nodes, w_hits.sum(axis=1), strict=True):
                reasons[_node_reason(p.node_ids[k])] += int(hits)
            for q in np.flatnonzero(p.amps_per_kw[i] > 0).tolist():
                a_hits = tight_a[np.ix_(nodes, [q], below)][:, 0, :]
                explained |= a_hits.any(axis=0)
                for k, hits in zip(nodes, a_hits.sum(axis=1), strict=True):
                    reasons[f"phase:{p.node_ids[k]}:{ALL_PHASES[q]}"] += int(hits)
            idle = x[i, below[~explained]] <= TIGHT_ABS_KW
            reasons["min_current"] += int(idle.sum())
            reasons["priority"] += int((~idle).sum())
        reasons = Counter({r: c for r, c in reasons.items() if c > 0})
        out.append(tuple(r for r, _ in reasons.most_common()))
    return tuple(out)


def soft_violations(p: Problem, x: Floats) -> list[Violation]:
    """The soft violations described above, one record per node (and phase)."""
    out: list[Violation] = []
    over = p.site_overload_kw > 0
    if over.any():
        out.append(
            Violation(
                "base_load_over_capacity",
                "site: base load minus PV exceeds the capacity; EVs are paused but the site is still over",
                node="site",
                slots=tuple(int(t) for t in np.flatnonzero(over)),
                amount=float(p.site_overload_kw.max()) * 1000.0,
                unit="W",
            )
        )
    delivered_before = np.cumsum(x, axis=1) * p.slot_h - x * p.slot_h
    wanting = p.active() & (delivered_before < p.need_kwh[:, None] - 1e-6)
    min_w = p.incidence @ (wanting * p.min_kw[:, None])
    deficit = min_w - p.node_cap_kw
    for k in np.flatnonzero((deficit > TIGHT_ABS_KW).any(axis=1)):
        bad = deficit[k] > TIGHT_ABS_KW
        out.append(
            Violation(
                "min_current_unserved",
                f"{_node_reason(p.node_ids[k])}: limit below the sum of minimum currents; some sessions paused",
                node=p.node_ids[k],
                slots=tuple(int(t) for t in np.flatnonzero(bad)),
                amount=float(deficit[k][bad].max()) * 1000.0,
                unit="W",
            )
        )
    for q, phase in enumerate(ALL_PHASES):
        limit = p.node_phase_a[:, q, None]
        if not np.isfinite(limit).any():
            continue
        min_a = p.incidence @ (wanting * (p.min_kw * p.amps_per_kw[:, q])[:, None])
        deficit_a = min_a - limit
        for k in np.flatnonzero((deficit_a > 1e-3).any(axis=1)):
            bad = deficit_a[k] > 1e-3
            out.append(
                Violation(
                    "min_current_unserved",
                    f"{_node_reason(p.node_ids[k])} {phase}: limit below the sum of minimum currents",
                    node=p.node_ids[k],
                    phase=phase,
                    slots=tuple(int(t) for t in np.flatnonzero(bad)),
                    amount=float(deficit_a[k][bad].max()),
                    unit="A",
                )
            )
    return out


def _node_reason(node: str) -> str:
    return "site" if node == "site" else f"circuit:{node}"
