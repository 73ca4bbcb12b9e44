"""Heuristic allocators, for comparison and as fallbacks (slot by slot, greedy, no LP).

Each plans slot ``t`` knowing only the sessions present in ``t`` and what they still need,
so running one over a whole snapshot is what it would do online.

- ``uncontrolled``: every session at its own max until full; ignores the circuit tree
  (what a site without load management does) — it can break limits, and says so;
- ``edf``: earliest departure first, each as much as its path's headroom allows;
- ``llf``: least laxity first (laxity = time left - time needed at its own max);
- ``round-robin``: equal share (max-min fair water filling over the tree).

All but ``uncontrolled`` respect every node's W and per-phase A limits and every phasor
(line-current) limit exactly (phasor.py: the headroom on the disc, not the LP's polygon), and
pause a session rather than run it below its minimum current.
"""

from __future__ import annotations

import numpy as np

from ems.optimizer.phasor import LineState, room, session_phasors
from ems.optimizer.problem import Floats, Problem
from ems.optimizer.schedule import Algorithm

EPS_KW = 1e-9


def plan(p: Problem, algorithm: Algorithm) -> Floats:
    """Power in kW, (sessions x slots), from the named heuristic (not ``lp``)."""
    if algorithm is Algorithm.UNCONTROLLED:
        return _uncontrolled(p)
    if algorithm is Algorithm.LP:
        raise ValueError("baselines.plan does not run the LP")
    return _greedy(p, algorithm)


def _uncontrolled(p: Problem) -> Floats:
    x = np.zeros((p.n, p.slots))
    left = p.need_kwh.copy()
    active = p.active()
    for t in range(p.slots):
        rate = np.where(active[:, t], np.minimum(p.max_kw, left / p.slot_h), 0.0)
        x[:, t] = rate
        left -= rate * p.slot_h
    return x


def _greedy(p: Problem, algorithm: Algorithm) -> Floats:
    x = np.zeros((p.n, p.slots))
    left = p.need_kwh.copy()
    active = p.active()
    by_session = p.incidence.T.tocsr()
    paths = [by_session.indices[by_session.indptr[i] : by_session.indptr[i + 1]] for i in range(p.n)]
    end_h = p.end * p.slot_h
    phasors = session_phasors(p.phasor_coef) if p.has_phasors else None
    for t in range(p.slots):
        present = np.flatnonzero(active[:, t] & (left > EPS_KW))
        if present.size == 0:
            continue
        head_w = p.node_cap_kw[:, t].copy()
        head_a = p.node_phase_a.copy()
        cap = np.minimum(p.max_kw[present], left[present] / p.slot_h)
        lines = None if phasors is None else LineState(p.phasor_coef, p.phasor_limit_a, np.zeros(p.n), phasors)
        if algorithm is Algorithm.ROUND_ROBIN:
            rates = _water_fill(p, present, cap, head_w, head_a, paths, lines)
        else:
            if algorithm is Algorithm.EDF:
                key = p.end[present].astype(np.float64)
            else:
                key = (end_h[present] - t * p.slot_h) - left[present] / p.max_kw[present]
            rates = np.zeros(present.size)
            for r in np.argsort(key, kind="stable"):
                i = present[r]
                nodes = paths[i]
                give = min(cap[r], _room(head_w, head_a, nodes, p.amps_per_kw[i]))
                if lines is not None:
                    give = min(give, lines.room(i))
                if give < p.min_kw[i] and give < cap[r]:
                    continue  # below the minimum current: pause rather than disobey IEC 61851
                head_w[nodes] -= give
                head_a[nodes] -= give * p.amps_per_kw[i]
                if lines is not None:
                    lines.take(i, give)
                rates[r] = give
        x[present, t] = rates
        left[present] -= rates * p.slot_h
    return x


def _room(head_w: Floats, head_a: Floats, nodes: np.ndarray, amps: Floats) -> float:
    room = float(head_w[nodes].min())
    for q in np.flatnonzero(amps > 0):
        room = min(room, float(head_a[nodes, q].min()) / float(amps[q]))
    return max(room, 0.0)


def _water_fill(
    p: Problem,
    present: np.ndarray,
    cap: Floats,
    head_w: Floats,
    head_a: Floats,
    paths: list[np.ndarray],
    lines: LineState | None = None,
) -> Floats:
    """Max-min fair rates: raise every unfrozen session equally until a limit is hit."""
    rates = np.zeros(present.size)
    frozen = cap <= EPS_KW
    sub = p.incidence[:, present]
    coef = [sub * p.amps_per_kw[present, q][None, :] for q in range(3)]
    phasor = p.phasor_coef[:, present] if lines is not None else None
    for _ in range(present.size + 4 * p.node_cap_kw.shape[0] + 1):
        live = ~frozen
        if not live.any():
            break
        step = float((cap - rates)[live].min())
        count_w = sub @ live.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = min(step, float(np.where(count_w > 0, head_w / count_w, np.inf).min()))
            per_a = [c @ live.astype(np.float64) for c in coef]
            for q in range(3):
                step = min(step, float(np.where(per_a[q] > 0, head_a[:, q] / per_a[q], np.inf).min()))
        if lines is not None and phasor is not None:
            rise = phasor @ live.astype(np.complex128)
            step = min(step, room(lines.z, rise, lines.limit_a))
            step = max(step, 0.0)
            lines.z += step * rise
        step = max(step, 0.0)
        rates[live] += step
        head_w -= step * count_w
        for q in range(3):
            head_a[:, q] -= step * per_a[q]
        full_w = head_w <= 1e-9
        full_a = head_a <= 1e-9
        # A full phasor limit freezes every session in it (max-min fair up to its disc).
        full_c = np.abs(lines.z) >= lines.limit_a - 1e-9 if lines is not None else np.zeros(0, dtype=bool)
        for r in np.flatnonzero(live):
            i = present[r]
            nodes = paths[i]
            amps = p.amps_per_kw[i]
            if (
                rates[r] >= cap[r] - 1e-9
                or full_w[nodes].any()
                or any(full_a[nodes, q].any() for q in np.flatnonzero(amps > 0))
                or (lines is not None and full_c[lines.limits_of(i)].any())
            ):
                frozen[r] = True
    # Equal shares below the minimum current cannot be followed: pause those sessions.
    low = (rates < p.min_kw[present] - 1e-9) & (rates < cap - 1e-9)
    rates[low] = 0.0
    return rates
