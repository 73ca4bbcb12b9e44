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
    live = np.flatnonzero(p.need_kwh > 0)
    if live.size < 2:
        return []
    # The nodes above a session, as one number (a fixed random projection of its column of
    # the incidence matrix: equal paths give equal numbers, different ones differ).
    weights = np.random.default_rng(12345).uniform(1.0, 2.0, p.incidence.shape[0])
    path = p.incidence.T @ weights
    columns = [path]
    if p.has_phasors:
        # Phasor limits alike: the same fixed random projection of the complex coefficients.
        ring = np.random.default_rng(54321).uniform(1.0, 2.0, p.phasor_limit_a.size)
        line = p.phasor_coef.T @ ring.astype(np.complex128)
        columns += [line.real, line.imag]
    key = np.column_stack(
        (
            *columns,
            p.amps_per_kw,
            p.first.astype(np.float64),
            p.end.astype(np.float64),
            p.need_kwh,
            p.max_kw,
            p.min_kw,
            p.bonus,
        )
    )[live]
    key = np.round(key, 9)
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    new = np.concatenate(([True], (ordered[1:] != ordered[:-1]).any(axis=1)))
    starts = np.flatnonzero(new)
    sizes = np.diff(np.concatenate((starts, [order.size])))
    return [live[order[a : a + n]] for a, n in zip(starts.tolist(), sizes.tolist(), strict=True) if n > 1]


def symmetrize(p: Problem, x: Floats, groups: list[Ints] | None = None, *, rotate: bool = False) -> Floats:
    """``x`` (kW, sessions x slots) with each group of identical sessions given its average plan.

    A group whose average would sit strictly between 0 and the minimum power in some slot
    cannot all charge at once there: the minimum-current rule needs some of it paused so
    that others can charge (averaging would pause them all and lose the energy). Averaging
    only some slots would move energy between the group's sessions, so such a group keeps
    its plan, or with ``rotate`` takes turns: slot by slot, the group's power goes in equal
    shares to as many of its sessions as can have at least the minimum, those charged least
    so far first (max-min fair; ties by position, so sessions already charging keep charging).
    """
    groups = identical_groups(p) if groups is None else groups
    if not groups:
        return x
    out = x.copy()
    dur_h = p.dur_h
    for g in groups:
        mean = x[g].mean(axis=0)
        floor = float(p.min_kw[g[0]])
        # Below the minimum is allowed in the slot where the request completes (feasibility.py).
        done = np.cumsum(mean * dur_h) >= p.need_kwh[g[0]] * (1 - 1e-9) - 1e-9
        completes = done & ~np.concatenate(([False], done[:-1]))
        if np.all((mean <= 1e-9) | (mean >= floor - 1e-9) | completes):
            out[g] = mean[None, :]
        elif rotate:
            out[g] = _take_turns(x[g], floor, float(p.max_kw[g[0]]), float(p.need_kwh[g[0]]), dur_h)
    return out


def _take_turns(xg: Floats, floor_kw: float, max_kw: float, need_kwh: float, dur_h: Floats) -> Floats:
    """The group's power per slot shared by turns (see :func:`symmetrize`); never more than
    the group had in a slot, nor more than a session's own max or remaining need."""
    size, slots = xg.shape
    total = xg.sum(axis=0)
    out = np.zeros_like(xg)
    got = np.zeros(size)
    for t in range(slots):
        if total[t] <= 1e-9:
            continue
        left = need_kwh - got
        cap = np.minimum(max_kw, np.maximum(left, 0.0) / dur_h[t])
        wanting = np.flatnonzero(cap > 1e-9)
        if wanting.size == 0:
            break
        order = wanting[np.argsort(got[wanting], kind="stable")]
        k = min(order.size, max(1, int(total[t] // max(floor_kw, 1e-9)), int(np.ceil(total[t] / max_kw - 1e-9))))
        power = np.zeros(size)
        rest = total[t]
        # Equal shares to the first k; what a nearly full one cannot take goes to the others,
        # then to the next in line (each at least the minimum, or what completes it).
        chosen = list(order[:k])
        while rest > 1e-9 and chosen:
            share = rest / len(chosen)
            room = cap[chosen] - power[chosen]
            give = np.minimum(room, share)
            power[chosen] += give
            rest -= float(give.sum())
            chosen = [i for i in chosen if cap[i] - power[i] > 1e-9]
            if not chosen and rest > 1e-9:
                more = [i for i in order[k:] if power[i] == 0.0 and (cap[i] >= floor_kw or cap[i] <= rest)]
                if not more or (rest < floor_kw and cap[more[0]] > rest):
                    break
                chosen = [more[0]]
                k += 1
        out[:, t] = power
        got += power * dur_h[t]
    return out
