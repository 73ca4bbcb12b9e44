"""Fairness among equals: sessions that are interchangeable get the same plan.

An LP answer is a vertex: when two sessions are identical in every way the LP sees (same
circuits and phase loading, same window, same remaining need, same own max and minimum,
same rank) it may still give one of them 32 A in a slot and the other 0 A, and swap in the
next slot (bang-bang). Averaging the plans of each group of identical sessions is exact:
every node's load and every session's energy stay the same (the group shares its limits,
its bounds are convex), so the objective and every limit are unchanged, and each session of
the group gets the same power in every slot. The spreading term in the LP (``Weights.spread``)
breaks the remaining ties (sessions that differ, but not in anything the objective ranks)
in favour of sharing a full limit over alternating it; docs/optimizer.md says what it costs.
"""

from __future__ import annotations

import numpy as np

from ems.optimizer.problem import Floats, Ints, Problem


def identical_groups(p: Problem) -> list[Ints]:
    """Groups (two or more sessions each) that the LP cannot tell apart."""
    if p.n < 2:
        return []
    _, path_id = np.unique(p.incidence.T.toarray() > 0, axis=0, return_inverse=True)
    key = np.column_stack(
        (
            path_id.reshape(-1).astype(np.float64),
            np.round(p.amps_per_kw, 9),
            p.first.astype(np.float64),
            p.end.astype(np.float64),
            np.round(p.need_kwh, 9),
            np.round(p.max_kw, 9),
            np.round(p.min_kw, 9),
            np.round(p.bonus, 12),
        )
    )
    live = np.flatnonzero(p.need_kwh > 0)
    if live.size < 2:
        return []
    _, group, counts = np.unique(key[live], axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    return [live[g] for g in np.split(order, bounds) if g.size > 1]


def symmetrize(p: Problem, x: Floats, groups: list[Ints] | None = None) -> Floats:
    """``x`` (kW, sessions x slots) with each group of identical sessions given its average plan.

    A group whose average would sit strictly between 0 and the minimum power in some slot
    keeps its plan: there the minimum-current rule needs some of the group paused so that
    others can charge (averaging would pause them all and lose the energy). Averaging only
    some slots would move energy between the group's sessions, so it is all or nothing.
    """
    groups = identical_groups(p) if groups is None else groups
    if not groups:
        return x
    out = x.copy()
    for g in groups:
        mean = x[g].mean(axis=0)
        floor = float(p.min_kw[g[0]])
        # Below the minimum is allowed in the slot where the request completes (feasibility.py).
        done = np.cumsum(mean) * p.slot_h >= p.need_kwh[g[0]] * (1 - 1e-9) - 1e-9
        completes = done & ~np.concatenate(([False], done[:-1]))
        if np.all((mean <= 1e-9) | (mean >= floor - 1e-9) | completes):
            out[g] = mean[None, :]
    return out
