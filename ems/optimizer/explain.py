"""Why a session got less than it asked for, and which soft goals could not hold.

``limited_by`` (per session, most frequent first):

- ``request``: fully served — its own request was the only limit;
- ``own_max``: it charged at its own maximum (EV or EVSE) in some slots;
- ``site`` / ``circuit:<id>``: a W limit on its path was full;
- ``phase:<node>:<L1|L2|L3>``: a per-phase current limit on its path was full;
- ``line:<id>``: a line-current (phasor) limit it adds to was full: the exact magnitude was
  within the polygon's loss (``current_limit_loss``) of the limit;
- ``window``: its window holds no whole slot of the horizon;
- ``min_current``: paused because the headroom was below its minimum current;
- ``priority``: headroom was there but the algorithm gave it to others (heuristics).

Soft violations (the schedule is still within every hard limit):

- ``base_load_over_capacity``: base load minus PV alone exceeds the site capacity;
- ``min_current_unserved``: a node's limit is below the sum of the minimum currents of the
  sessions under it that still want energy, so some of them are paused.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.domain.units import ALL_PHASES
from ems.optimizer.phasor import DEFAULT_LOSS, magnitudes
from ems.optimizer.problem import Floats, Problem
from ems.optimizer.schedule import Violation

TIGHT_REL = 1e-5
TIGHT_ABS_KW = 1e-4
"""A limit counts as full within 0.1 W + 10 ppm: above LP round-off (~1e-7 kW)."""


def limited_by(
    p: Problem, x: Floats, unmet_kwh: Floats, *, line_loss: float = DEFAULT_LOSS
) -> tuple[tuple[str, ...], ...]:
    """Per session, the reasons described above (``x`` in kW, sessions x slots; ``line_loss``:
    the phasor polygon's precision the plan was made with)."""
    load = p.incidence @ x
    tight_w = load >= p.node_cap_kw - (TIGHT_ABS_KW + TIGHT_REL * np.abs(np.minimum(p.node_cap_kw, 1e12)))
    tight_a = np.zeros((p.node_cap_kw.shape[0], 3, p.slots), dtype=bool)
    for q in range(3):
        limit = p.node_phase_a[:, q, None]
        if np.isfinite(limit).any():
            amps = p.incidence @ (p.amps_per_kw[:, q, None] * x)
            tight_a[:, q] = amps >= limit - (1e-3 + TIGHT_REL * np.abs(np.minimum(limit, 1e12)))
    active = p.active()
    tol = 1e-6 * np.maximum(p.need_kwh, 1.0) + 1e-3 * p.slot_h * 1e-3
    short = unmet_kwh > tol
    at_max = x >= p.max_kw[:, None] - TIGHT_ABS_KW
    # Slots where a short session got less than its max: the ones that need a reason.
    below = (active & ~at_max & short[:, None]).astype(np.float64)
    on_path = p.incidence.T.toarray() > 0  # (n, K)
    names: list[str] = ["own_max"]
    blocks: list[Floats] = [(active & at_max & short[:, None]).sum(axis=1, dtype=np.float64)[:, None]]
    explained = (p.incidence.T @ tight_w.astype(np.float64)) > 0  # (n, T): some full W limit on the path
    # Only short sessions and nodes full somewhere can count: the products below are taken
    # over those rows and columns alone ((n, T) @ (T, K) at 2,000 x 288 was 0.2 s).
    rows = np.flatnonzero(short)
    blocks.append(_counts(below, rows, tight_w, on_path))  # (n, K)
    names += [_node_reason(node) for node in p.node_ids]
    for q in range(3):
        if not tight_a[:, q].any():
            continue
        loads = p.amps_per_kw[:, q] > 0
        a_full = tight_a[:, q]
        explained |= loads[:, None] & ((p.incidence.T @ a_full.astype(np.float64)) > 0)
        blocks.append(_counts(below * loads[:, None], rows, a_full, on_path))
        names += [f"phase:{node}:{ALL_PHASES[q]}" for node in p.node_ids]
    if p.has_phasors:
        limit = p.phasor_limit_a[:, None]
        line_full = magnitudes(p.phasor_coef, x) >= limit * (1.0 - line_loss) - (1e-3 + TIGHT_REL * limit)
        if line_full.any():
            members = sp.csr_array(abs(p.phasor_coef).T)  # (n, C), sparse: no BLAS call (see _counts)
            in_limit = members.toarray() > 0
            explained |= (members @ line_full.astype(np.float64)) > 0
            blocks.append(_counts(below, rows, line_full, in_limit))
            names += [f"line:{c}" for c in p.phasor_ids]
    unexplained = (below > 0) & ~explained
    idle = x <= TIGHT_ABS_KW
    blocks.append((unexplained & idle).sum(axis=1, dtype=np.float64)[:, None])
    blocks.append((unexplained & ~idle).sum(axis=1, dtype=np.float64)[:, None])
    names += ["min_current", "priority"]
    counts = np.hstack(blocks)  # (n, reasons)
    has_window: npt.NDArray[np.bool_] = np.asarray(active.any(axis=1))
    out: list[tuple[str, ...]] = [("request",) if not short[i] else ("window",) for i in range(p.n)]
    ranked = np.flatnonzero(short & has_window)
    # Most frequent first; ties keep the order above (own max, nodes, phases, ...): one stable
    # sort of every such session's counts, the reasons with a count > 0 leading each row.
    sub = counts[ranked]
    order = np.argsort(-sub, axis=1, kind="stable")
    hits = np.count_nonzero(sub > 0, axis=1).tolist()
    labels = np.array(names, dtype=object)
    for r, (i, k) in enumerate(zip(ranked.tolist(), hits, strict=True)):
        out[i] = tuple(labels[order[r, :k]])
    return tuple(out)


def _counts(
    below: Floats, rows: npt.NDArray[np.int64], full: npt.NDArray[np.bool_], on_path: npt.NDArray[np.bool_]
) -> Floats:
    """(n, K): per session and node, slots the session got less than its max while the node was full."""
    out = np.zeros(on_path.shape)
    nodes = np.flatnonzero(full.any(axis=1))
    if rows.size and nodes.size:
        # Only the (session, node) pairs on a path, each a dot product over the slots: a dense
        # matrix product here went to multi-threaded BLAS, which on a shared 2-core machine cost
        # more in thread hand-offs than the product itself (ACN-Sim Caltech 500: 197 -> 165 ms
        # per re-plan with BLAS pinned to one thread; docs/benchmarks/optimizer.md).
        r, k = np.nonzero(on_path[np.ix_(rows, nodes)])
        out[rows[r], nodes[k]] = np.einsum("ij,ij->i", below[rows[r]], full[nodes[k]].astype(np.float64))
    return out


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
