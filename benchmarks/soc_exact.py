"""The exact second-order-cone optimum of a snapshot's energy, for measuring the LP's polygon.

Maximise delivered energy ``sum_{i,t} dur_h x[i,t]`` subject to the LP's own bounds and linear
rows (``x <= min(max_kw, need / dur_h)``, each request, every node's W and per-phase A limit)
and every :class:`CurrentLimit` exactly: ``|phasor_coef[c] @ x[:, t]| <= limit_a[c]`` per slot.
No minimum current (the LP plans without it too; the repair comes after). Solved with cvxpy
(CLARABEL), a dev dependency only: ``pip install -e .[dev]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ems.optimizer.problem import Floats, Problem


@dataclass(frozen=True, slots=True)
class Exact:
    energy_kwh: float
    x_kw: Floats
    solve_s: float
    status: str


def exact_energy(p: Problem) -> Exact:
    """The exact optimum described above (uniform problems only: ``p.coarse is None``)."""
    import cvxpy as cp  # dev only: never imported by ems

    active = p.active()
    T = p.slots
    hi = np.where(active, np.minimum(p.max_kw[:, None], p.need_kwh[:, None] / p.slot_h), 0.0)
    x = cp.Variable((p.n, T), nonneg=True)
    cons = [x <= hi, cp.sum(x, axis=1) * p.slot_h <= p.need_kwh]
    load_w = p.incidence.toarray()
    for k in range(p.node_cap_kw.shape[0]):
        if np.isfinite(p.node_cap_kw[k]).all():
            cons.append(load_w[k] @ x <= p.node_cap_kw[k])
        for q in range(3):
            if np.isfinite(p.node_phase_a[k, q]):
                cons.append((load_w[k] * p.amps_per_kw[:, q]) @ x <= p.node_phase_a[k, q])
    coef = p.phasor_coef.toarray()
    for c in range(coef.shape[0]):
        re = coef[c].real @ x
        im = coef[c].imag @ x
        # |z_t| <= L for every slot t: a second-order cone per slot.
        cons.append(cp.SOC(np.full(T, p.phasor_limit_a[c]), cp.vstack([re, im]), axis=0))
    prob = cp.Problem(cp.Maximize(cp.sum(x) * p.slot_h), cons)
    prob.solve(solver=cp.CLARABEL)
    value = np.asarray(x.value if x.value is not None else np.zeros((p.n, T)), dtype=np.float64)
    return Exact(float(value.sum() * p.slot_h), value, float(prob.solver_stats.solve_time or 0.0), str(prob.status))
