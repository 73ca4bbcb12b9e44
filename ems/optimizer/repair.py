"""Repairs that turn an LP answer into one chargers can follow, staying within every limit.

**Minimum current without a MILP.** IEC 61851 says an EV charges at 6 A or more, or pauses;
"0 or at least min" is a disjunction, and modelling it exactly needs a binary per session
and slot (a 1,000 x 96 day would be a 96k-binary MILP, seconds to minutes). Instead the LP
runs without it and :func:`enforce_min_current` repairs, slot by slot: every session planned
between 0 and its minimum is raised to the minimum when every node above it has the headroom;
else it borrows the difference from sessions under the same full limits that charge above
their own minimum (lowest rank first; undone if that is not enough); else it pauses and the
power it frees goes to the others in rank order. :func:`top_up` then gives headroom left in
later slots to sessions still short. Each step only moves power into existing headroom,
so the result stays within every limit. LP solutions are vertices: per slot only about
one session per binding limit sits strictly between its bounds, so the repair touches few
sessions (measured in docs/benchmarks/optimizer.md); the rolling-horizon re-plan recovers
what is left. A session may average below its minimum in the slot where it completes its
request (the EV stops charging mid-slot).

**Scaling into limits.** A time-limited or interior-point answer may break a limit by a
hair; :func:`scale_into_limits` scales every session under an overloaded node down by
the node's overload factor. Scaling down never raises another node's load, so one pass
makes every limit hold.

**Phasor limits** (``CurrentLimit``, phasor.py) are kept exactly: every step that adds power
asks :class:`ems.optimizer.phasor.LineState` for the session's exact room on the disc. Scaling
some sessions down may lengthen a phasor sum (their current cancelled part of another's), so
:func:`scale_into_limits` scales a slot still over a phasor limit as a whole (every load and
every phasor sum shrink by the same factor).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.optimizer.phasor import Kinds, LineState, SessionPhasors, magnitudes, phasor_kinds, session_phasors
from ems.optimizer.problem import Floats, Problem

EPS_KW = 1e-6
"""1 mW in kW: below it a value is solver round-off, not a plan."""


def clip_to_sessions(p: Problem, x: Floats) -> Floats:
    """Zero outside windows, clip to [0, own max], scale each session down to its request."""
    out: Floats = np.clip(x, 0.0, p.max_kw[:, None]) * p.active()
    energy = np.einsum("ij,j->i", out, p.dur_h)  # not a BLAS call (explain._counts says why)
    over = energy > p.need_kwh
    factor = np.ones(p.n)
    factor[over] = p.need_kwh[over] / energy[over]
    result: Floats = out * factor[:, None]
    return result


def scale_into_limits(p: Problem, x: Floats) -> Floats:
    """A copy of ``x`` (kW, sessions x slots) that respects every session and node limit."""
    out = clip_to_sessions(p, x)
    factor = np.ones_like(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        load = p.incidence @ out
        node_f = np.where(load > p.node_cap_kw, p.node_cap_kw / load, 1.0)
        for q in range(3):
            limit = p.node_phase_a[:, q, None]
            if not np.isfinite(limit).any():
                continue  # no limit on this phase anywhere: nothing to scale for it
            amps = p.incidence @ (p.amps_per_kw[:, q, None] * out)
            node_f = np.minimum(node_f, np.where(amps > limit, limit / amps, 1.0))
    for k in np.flatnonzero((node_f < 1.0).any(axis=1)):
        under = _row(p.incidence, int(k))
        factor[under] = np.minimum(factor[under], node_f[k][None, :])
    if p.has_phasors:
        with np.errstate(divide="ignore", invalid="ignore"):
            line_a = magnitudes(p.phasor_coef, out)
            limit = p.phasor_limit_a[:, None]
            line_f = np.where(line_a > limit, limit / line_a, 1.0)
        for c in np.flatnonzero((line_f < 1.0).any(axis=1)):
            under = _row(p.phasor_coef, int(c))
            factor[under] = np.minimum(factor[under], line_f[c][None, :])
        scaled = bool((factor < 1.0).any())
        result_p: Floats = out * factor
        # Scaling a subset may lengthen another phasor sum: scale such a slot as a whole.
        with np.errstate(divide="ignore", invalid="ignore"):
            if scaled:  # else result_p == out and the sums are the ones above
                line_a = magnitudes(p.phasor_coef, result_p)
            slot_f = np.where(line_a > limit, limit / line_a, 1.0).min(axis=0)
        result_p *= np.minimum(slot_f, 1.0)[None, :] * np.where(slot_f < 1.0, 1.0 - 1e-12, 1.0)[None, :]
        return result_p
    result: Floats = out * factor
    return result


def _row(m: sp.csr_array, k: int) -> npt.NDArray[np.int32]:
    """The columns stored in row ``k`` of ``m`` (a slice: indexing a sparse row costs ~50 us)."""
    out: npt.NDArray[np.int32] = m.indices[m.indptr[k] : m.indptr[k + 1]]
    return out


class Paths:
    """Per session (``[i]``): the nodes above it and its A per kW on each grid phase (3,),
    sliced from the transposed incidence when first asked for (the repairs move few sessions)."""

    __slots__ = ("_amps", "_by_session", "_pairs")

    def __init__(self, p: Problem) -> None:
        self._by_session = p.incidence.T.tocsr()
        self._amps = p.amps_per_kw
        self._pairs: dict[int, tuple[npt.NDArray[np.int32], Floats]] = {}

    def __len__(self) -> int:
        return int(self._amps.shape[0])

    def __getitem__(self, i: int) -> tuple[npt.NDArray[np.int32], Floats]:
        pair = self._pairs.get(i)
        if pair is None:
            m = self._by_session
            pair = self._pairs[i] = (m.indices[m.indptr[i] : m.indptr[i + 1]], self._amps[i])
        return pair


def enforce_min_current(
    p: Problem, x: Floats, paths: Paths | None = None, until: int | None = None, *, line_data: Lines | None = None
) -> Floats:
    """A copy of ``x`` (kW) where every session is paused or at least at its minimum (see above).

    With ``until``, slots from ``until`` on (the coarse tail of a non-uniform horizon, a
    forecast the next re-plan replaces) are only cut: power below a minimum becomes 0.
    ``paths`` and ``line_data``: :func:`session_paths` and :func:`session_lines` of ``p``, when the
    caller has them (plan.py passes the same to :func:`top_up`).
    """
    out = clip_to_sessions(p, x)
    if until is not None and until < p.slots:
        tail = out[:, until:]
        tail[(tail > EPS_KW) & (tail < p.min_kw[:, None] - EPS_KW)] = 0.0
    paths = paths if paths is not None else session_paths(p)
    order = np.argsort(-p.bonus, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    delivered = np.zeros(p.n)
    active = p.active()
    phasors, kinds = line_data if line_data is not None else session_lines(p)
    for t in range(p.slots if until is None else min(until, p.slots)):
        col = out[:, t]
        room = (p.need_kwh - delivered) / p.slot_h
        np.minimum(col, np.maximum(room, 0.0), out=col)
        cap = np.where(active[:, t], np.minimum(p.max_kw, np.maximum(room, 0.0)), 0.0)
        # In the slot where a session completes, its floor is what it still needs.
        floor = np.minimum(p.min_kw, np.maximum(room, 0.0))
        frac = np.flatnonzero((col > EPS_KW) & (col < floor - EPS_KW))
        if frac.size:
            head_w, head_a = _headroom(p, out, t)
            lines = None if phasors is None else LineState(p.phasor_coef, p.phasor_limit_a, col, phasors, kinds)
            paused = []
            for i in frac[np.argsort(rank[frac])]:
                nodes, amps = paths[i]
                add = floor[i] - col[i]
                if _fits(i, add, head_w, head_a, paths, lines):
                    _take(head_w, head_a, nodes, amps, add, lines, i)
                    col[i] = floor[i]
                elif _borrow(i, add, col, floor, head_w, head_a, paths, frac_order_donors(col, floor, rank, i), lines):
                    col[i] = floor[i]
                else:
                    _take(head_w, head_a, nodes, amps, -col[i], lines, i)
                    col[i] = 0.0
                    paused.append(i)
            if paused:
                _redistribute(col, cap, floor, head_w, head_a, paths, order, lines)
        delivered += col * p.slot_h
    if until is not None and until < p.slots:
        _clip_tail(p, out[:, until:], delivered)
    return out


def _clip_tail(p: Problem, tail: Floats, delivered: Floats) -> None:
    """Cut the coarse tail (in place) to what each session still needs after the exact slots
    (raising a slot to the minimum there may have moved some of it forward), then cut
    power left below a minimum (except where the request completes)."""
    before = np.cumsum(tail, axis=1) * p.slot_h - tail * p.slot_h
    room = np.maximum(p.need_kwh - delivered, 0.0)[:, None] - before
    np.minimum(tail, np.maximum(room, 0.0) / p.slot_h, out=tail)
    completes = (tail > EPS_KW) & (room <= tail * p.slot_h + 1e-9)
    tail[(tail > EPS_KW) & (tail < p.min_kw[:, None] - EPS_KW) & ~completes] = 0.0


def frac_order_donors(col: Floats, floor: Floats, rank: np.ndarray, i: int) -> np.ndarray:
    """Sessions that could give some power to ``i``: charging above their floor, lowest priority first."""
    donors = np.flatnonzero(col > floor + EPS_KW)
    donors = donors[donors != i]
    ordered: np.ndarray = donors[np.argsort(-rank[donors], kind="stable")]
    return ordered


def _borrow(
    i: int,
    add: float,
    col: Floats,
    floor: Floats,
    head_w: Floats,
    head_a: Floats,
    paths: Paths,
    donors: np.ndarray,
    lines: LineState | None = None,
) -> bool:
    """Make ``add`` kW of headroom for session ``i`` by lowering sessions that share its full
    limits (never below their own floor); undo and return False when that is not enough.
    A full phasor limit counts as shared by the sessions in it (lowering one of them may or
    may not free room on the disc: the final check is exact).
    """
    nodes, amps = paths[i]
    lacking = set(nodes[head_w[nodes] < add - EPS_KW].tolist())
    for q in np.flatnonzero(amps > 0).tolist():
        lacking |= set(nodes[head_a[nodes, q] < add * amps[q] - 1e-6].tolist())
    if lines is not None and lines.room(i) < add - EPS_KW:
        lacking |= {-1 - int(c) for c in lines.limits_of(i)}
    taken: list[tuple[int, float]] = []
    still = add
    for j in donors.tolist():
        j_nodes, j_amps = paths[j]
        shared = set(j_nodes.tolist())
        if lines is not None:
            shared |= {-1 - int(c) for c in lines.limits_of(j)}
        if not lacking <= shared:
            continue
        give = min(float(col[j] - floor[j]), still)
        col[j] -= give
        _take(head_w, head_a, j_nodes, j_amps, -give, lines, j)
        taken.append((j, give))
        still -= give
        if still <= EPS_KW:
            break
    if _fits(i, add, head_w, head_a, paths, lines):
        _take(head_w, head_a, nodes, amps, add, lines, i)
        return True
    for j, give in taken:
        col[j] += give
        _take(head_w, head_a, paths[j][0], paths[j][1], give, lines, j)
    return False


def _fits(i: int, add: float, head_w: Floats, head_a: Floats, paths: Paths, lines: LineState | None) -> bool:
    """Session ``i`` may take ``add`` more kW under every node, phase and phasor limit above it."""
    nodes, amps = paths[i]
    if not (np.all(head_w[nodes] >= add - EPS_KW) and np.all(head_a[nodes] >= add * amps[None, :] - 1e-6)):
        return False
    return lines is None or lines.room(i) >= add - EPS_KW


def top_up(
    p: Problem, x: Floats, paths: Paths | None = None, until: int | None = None, *, line_data: Lines | None = None
) -> Floats:
    """A copy of ``x`` (kW) with headroom left in any slot given to sessions still short.

    Pausing in :func:`enforce_min_current` leaves a session short and a little headroom
    unused; later slots with headroom (after the peak) can make up for it. Slot by slot,
    sessions whose planned total is below their request get more (earliest departure and
    smallest need first), each to at least its minimum or not at all. Only headroom is used,
    so every limit still holds. With ``until``, only slots before it are topped up
    (``paths``, ``line_data``: as in :func:`enforce_min_current`).
    """
    out = x.copy()
    short = p.need_kwh - out.sum(axis=1) * p.slot_h
    if not (short > EPS_KW * p.slot_h).any():
        return out
    paths = paths if paths is not None else session_paths(p)
    order = np.argsort(-p.bonus, kind="stable")
    active = p.active()
    phasors, kinds = line_data if line_data is not None else session_lines(p)
    under = sp.csr_array(p.incidence.T)  # once: a transpose per slot and phase cost ~4 ms a plan
    for t in range(p.slots if until is None else min(until, p.slots)):
        col = out[:, t]
        want = active[:, t] & (short > EPS_KW * p.slot_h)
        if not want.any():
            continue
        head_w, head_a = _headroom(p, out, t)
        if head_w[0] <= EPS_KW:
            continue
        cap = np.where(want, np.minimum(p.max_kw, col + short / p.slot_h), col)
        # Only sessions below their cap with headroom on their whole path can take anything:
        # _fill would skip the others one by one in Python (7-12 ms a plan at 500 sessions,
        # where the LP filled the limits). A node with at most 1e-9 A left gives any session
        # under it less than EPS_KW (at least 0.33 A per kW: 1,000 V x 3 phases).
        blocked = (under @ (head_w <= EPS_KW).astype(np.float64)) > 0
        for q in range(3):
            full_q = (under @ (head_a[:, q] <= 1e-9).astype(np.float64)) > 0
            blocked |= full_q & (p.amps_per_kw[:, q] > 0)
        takers = order[(want & (cap - col > EPS_KW) & ~blocked)[order]]
        if takers.size == 0:
            continue
        lines = None if phasors is None else LineState(p.phasor_coef, p.phasor_limit_a, col, phasors, kinds)
        before = col.copy()
        floor = np.where(col > EPS_KW, 0.0, p.min_kw)
        _fill(col, cap, floor, head_w, head_a, paths, takers, lines)
        short -= (col - before) * p.slot_h
    return out


def _redistribute(
    col: Floats,
    cap: Floats,
    floor: Floats,
    head_w: Floats,
    head_a: Floats,
    paths: Paths,
    order: np.ndarray,
    lines: LineState | None = None,
) -> None:
    """Give freed headroom to sessions in ``order`` (each to at least its minimum, or nothing)."""
    _fill(col, cap, floor, head_w, head_a, paths, order[cap[order] - col[order] > EPS_KW], lines)


def _take(
    head_w: Floats,
    head_a: Floats,
    nodes: np.ndarray,
    amps: Floats,
    kw: float,
    lines: LineState | None = None,
    i: int = -1,
) -> None:
    head_w[nodes] -= kw
    head_a[nodes] -= kw * amps[None, :]
    if lines is not None:
        lines.take(i, kw)


def _headroom(p: Problem, x: Floats, t: int) -> tuple[Floats, Floats]:
    """Per node: W headroom (K,) and A headroom per phase (K, 3) in slot ``t`` (may be inf)."""
    col = x[:, t]
    head_w: Floats = p.node_cap_kw[:, t] - p.incidence @ col
    head_a: Floats = p.node_phase_a - p.incidence @ (p.amps_per_kw * col[:, None])
    return head_w, head_a


Lines = tuple[SessionPhasors | None, Kinds | None]


def session_lines(p: Problem) -> Lines:
    """Per session its phasor limits and coefficients, and the kinds of sessions
    (:class:`ems.optimizer.phasor.LineState`); ``(None, None)`` without phasor limits."""
    if not p.has_phasors:
        return None, None
    phasors = session_phasors(p.phasor_coef)
    return phasors, phasor_kinds(phasors)


def session_paths(p: Problem) -> Paths:
    """Per session: the nodes above it and its A-per-kW on each grid phase (3,)."""
    return Paths(p)


def _fill(
    col: Floats,
    cap: Floats,
    floor: Floats,
    head_w: Floats,
    head_a: Floats,
    paths: Paths,
    order: np.ndarray,
    lines: LineState | None = None,
) -> None:
    """Give each session in ``order`` what headroom allows, in [floor, cap] or nothing.

    Stops as soon as the site (node 0, above everyone) has no headroom left.
    """
    for i in order:
        if head_w[0] <= EPS_KW:
            return
        spare = cap[i] - col[i]
        if spare <= EPS_KW:
            continue
        if lines is not None:
            # The room first: on a site whose lines the LP filled, most sessions have none, and
            # skipping them here is what the full bound below would decide (``add <= room``).
            spare = min(spare, lines.room(i))
            if spare <= EPS_KW or col[i] + spare < floor[i] - EPS_KW:
                continue
        nodes, amps = paths[i]
        add = min(spare, float(head_w[nodes].min()))
        for q in range(3):
            if amps[q] > 0:
                add = min(add, float(head_a[nodes, q].min()) / float(amps[q]))
        if add <= EPS_KW or col[i] + add < floor[i] - EPS_KW:
            continue
        _take(head_w, head_a, nodes, amps, add, lines, i)
        col[i] += add
