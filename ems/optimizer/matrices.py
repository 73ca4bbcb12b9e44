"""Stage 2: the LP as sparse matrices, one function per constraint family.

Variables (all continuous, in this column order):

- ``x[j]`` for each (session ``i``, slot ``t``) pair inside the session's window: power in kW,
  ``0 <= x[j] <= min(max_kw[i], need_kwh[i] / slot_h)``;
- ``u[i]`` per session: shortfall in kWh, ``0 <= u[i] <= need_kwh[i]``;
- ``z``: the largest relative shortfall, ``0 <= z <= 1``;
- ``peak[i]`` (only when spreading) per session: its largest power in the first slots;
- ``d[j]`` (only when smoothing) per consecutive pair of a session's slots: ``|x[j+1] - x[j]|``;
- ``y[g,t]`` (only with current limits whose sessions come in groups of identical
  coefficients) per group and slot: the group's total power (:class:`PhasorGroups`).

Phasor (line-current) limits are rows of their inner polygon (:func:`phasor_rows`, or over
group sums: :func:`grouped_phasor_rows`), appended only when the snapshot has
:class:`CurrentLimit` s: the plain LP is unchanged.

Rows: ``row_lo <= A @ v <= row_hi``. Built vectorised: no Python loop runs over
sessions x slots. The objective is in :func:`objective`; weights in :class:`Weights`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.optimizer.phasor import DEFAULT_LOSS, equal_rows, polygon
from ems.optimizer.problem import Floats, Ints, Problem

INF = np.inf

ROW_ENTITY = {
    "request": "session",
    "node_power": "node",
    "node_phase": "node * 3 + phase",
    "fairness": "session",
    "phasor_sum": "phasor group",
    "phasor": "limit * POLYGON_SIDES_MAX + side (the row's place in its limit's polygon)",
    "spread": "session",
    "smoothness": "2 * session + (0: x[j+1] - x[j] <= d, 1: x[j] - x[j+1] <= d)",
}
"""What :attr:`Block.entity` counts in each family."""
POLYGON_SIDES_MAX = 1024
"""More sides than any polygon has (a full circle at a 1e-5 loss has ~700)."""


@dataclass(frozen=True, slots=True)
class Weights:
    """Objective weights, per kWh, relative to 1 for each kWh delivered.

    The LP maximizes ``sum_j slot_h x_j (1 + departure*bonus_i + early*(1 - t/T)
    - price*price_rel_t) - fairness*E_cap*z - smoothness*slot_h*sum d``.
    Every secondary weight is small so the LP stays lexicographic in effect: if ``E*`` is the
    most energy any schedule delivers, the chosen schedule delivers at least
    ``E* (1 - price - fairness - 2 smoothness) / (1 + departure + early)``; with the
    defaults that is within 0.06 % of ``E*`` (the quality target is 0.1 %), and any
    positive weight still breaks ties among the many max-energy schedules.
    """

    departure: float = 3e-4
    """Earlier departures (and higher priorities) first: what EDF gets right."""
    early: float = 1e-4
    """Charge as soon as possible: capacity left unused now is lost, and the future is uncertain."""
    price: float = 2e-4
    """Cheaper slots first, among schedules delivering the same energy."""
    fairness: float = 1e-6
    """Minimize the largest relative shortfall, among sessions otherwise tied: any larger and it
    spreads shortfall over everyone (measured: 1e-4 cut fully served sessions from 311 to 50)."""
    smoothness: float = 0.0
    """Penalize slot-to-slot changes of one session's power (adds a variable per pair; off by default)."""
    spread: float = 0.0
    """Per kWh of each session's peak power over the first ``spread_slots`` slots: among plans
    delivering the same energy, share a full limit between sessions rather than alternate
    0 A and max between them. It never trades energy for spreading inside the LP (lowering
    a peak by ``e`` kW removes at least ``e * slot_h`` kWh, worth more than the
    ``spread * e * slot_h`` it saves), but spread plans have more sessions between 0 and
    their minimum current, and the repair then pauses some: measured, 5e-7 cost 0.3 % on a
    test scenario and 1 of 134 fully served sessions on a replayed day, and covering every
    slot made HiGHS 10-45x slower (docs/optimizer.md). Off by default: identical sessions
    are made symmetric exactly instead (fairness.py)."""
    spread_slots: int = 8
    """Slots from now the spreading term covers: the ones executed before the next re-plan
    (the exact slots of a non-uniform horizon); a row per session and slot."""


@dataclass(frozen=True, slots=True)
class Block:
    """One constraint family as COO triplets over its own row numbering."""

    name: str
    rows: Ints
    cols: Ints
    vals: Floats
    lo: Floats
    hi: Floats
    lazy: npt.NDArray[np.bool_] | None = None
    """Rows that rarely bind: the solver may start without them (lp.py adds them when violated)."""
    entity: Ints | None = None
    """Per row: what it constrains within its family (a session, node, group, polygon side; see
    :data:`ROW_ENTITY`), and ``slot``: its LP slot (-1: none). Together with the family they
    identify a row across re-plans (carry.py)."""
    slot: Ints | None = None


@dataclass(frozen=True, slots=True)
class LpMatrices:
    """The assembled LP: minimize ``cost @ v`` s.t. ``row_lo <= A v <= row_hi``, bounds."""

    A: sp.csc_array
    cost: Floats
    col_lo: Floats
    col_hi: Floats
    row_lo: Floats
    row_hi: Floats
    var_sess: Ints
    var_slot: Ints
    n_x: int
    u_col: int
    z_col: int
    families: tuple[tuple[str, int, int], ...]
    """(name, first row, end row) per constraint family."""
    lazy: npt.NDArray[np.bool_]
    """Per row: a circuit's power row or any phase row. On workplace days under 1 % of them
    bind (1,000 x 96: 43 of 19,296), so lp.solve starts without them."""
    peak_col: int = -1
    """First of the per-session peak columns of the spreading term (-1: none)."""
    d_col: int = -1
    """First of the smoothness columns (-1: none)."""
    y_col: int = -1
    """First of the phasor group-sum columns ``y[g,t]`` (-1: none; :class:`PhasorGroups`)."""
    y_of_x: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per ``x`` column: the ``y`` column (relative to ``y_col``) it is summed into, -1: none."""
    n_y: int = 0
    """Number of ``y`` columns."""
    y_group: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per ``y`` column: its group (an index into ``group_rep``); ``y_slot``: its LP slot."""
    y_slot: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    group_rep: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per phasor group: one member session (the group is identified by its coefficients)."""
    row_entity: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per row: :attr:`Block.entity`; ``row_slot``: :attr:`Block.slot` (identities for carry.py)."""
    row_slot: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.A.shape[0]), int(self.A.shape[1]))


def variables(p: Problem) -> tuple[Ints, Ints, Ints]:
    """Index the ``x`` variables: (session, slot) per column, and each session's first column."""
    lens = p.window_slots
    offsets = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64) if lens.size else lens
    var_sess = np.repeat(np.arange(p.n, dtype=np.int64), lens)
    within = np.arange(var_sess.size, dtype=np.int64) - np.repeat(offsets, lens)
    var_slot = np.repeat(p.first, lens) + within
    return var_sess, var_slot, offsets


def _node_session_pairs(p: Problem, nodes: Ints) -> tuple[Ints, Ints]:
    """(node position in ``nodes``, session) for every session under each listed node."""
    sub = p.incidence[nodes].tocoo()
    return sub.row.astype(np.int64), sub.col.astype(np.int64)


def _expand(pair_row: Ints, pair_sess: Ints, lens: Ints, offsets: Ints) -> tuple[Ints, Ints, Ints]:
    """Repeat each (row, session) pair over the session's columns: (row, column, session) per entry."""
    counts = lens[pair_sess]
    rep = np.repeat(pair_row, counts)
    sess = np.repeat(pair_sess, counts)
    starts = np.repeat(offsets[pair_sess], counts)
    within = np.arange(rep.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return rep, starts + within, sess


def node_power_rows(p: Problem, var_slot: Ints, offsets: Ints) -> Block:
    """Per node ``k`` with a W limit and slot ``t``: ``sum_{i under k} x[i,t] <= cap_kw[k,t]``.

    The site row uses ``capacity - base_load + pv`` (never below 0, see ``site_overload_kw``).
    """
    nodes = np.flatnonzero(np.isfinite(p.node_cap_kw).all(axis=1))
    T = p.slots
    pr, ps = _node_session_pairs(p, nodes)
    rep, cols, _ = _expand(pr, ps, p.window_slots, offsets)
    rows = rep * T + var_slot[cols]
    hi = p.node_cap_kw[nodes].reshape(-1)
    lazy = np.repeat(nodes != 0, T)
    entity, slot = np.repeat(nodes, T), np.tile(np.arange(T, dtype=np.int64), nodes.size)
    return Block("node_power", rows, cols, np.ones(cols.size), np.full(hi.size, -INF), hi, lazy, entity, slot)


def node_phase_rows(p: Problem, var_slot: Ints, offsets: Ints) -> Block:
    """Per node ``k``, grid phase ``q`` with an A limit and slot ``t``:
    ``sum_{i under k} amps_per_kw[i,q] x[i,t] <= phase_a[k,q]`` (phase rotation is in the coefficient).
    """
    T = p.slots
    limited = np.argwhere(np.isfinite(p.node_phase_a))
    pr, ps = _node_session_pairs(p, limited[:, 0].astype(np.int64))
    q = limited[pr, 1]
    loads = p.amps_per_kw[ps, q] > 0
    pr, ps, q = pr[loads], ps[loads], q[loads]
    rep, cols, sess = _expand(pr, ps, p.window_slots, offsets)
    vals = p.amps_per_kw[sess, np.repeat(q, p.window_slots[ps])]
    hi = np.repeat(p.node_phase_a[limited[:, 0], limited[:, 1]], T)
    lazy = np.ones(hi.size, dtype=bool)
    entity = np.repeat(limited[:, 0] * 3 + limited[:, 1], T).astype(np.int64)
    slot = np.tile(np.arange(T, dtype=np.int64), limited.shape[0])
    return Block("node_phase", rep * T + var_slot[cols], cols, vals, np.full(hi.size, -INF), hi, lazy, entity, slot)


def phasor_rows(p: Problem, var_slot: Ints, offsets: Ints, loss: float) -> Block:
    """Per current limit ``c``, polygon direction ``phi_k`` and slot ``t`` (phasor.py):
    ``sum_i Re(phasor_coef[c,i] exp(-j phi_k)) x[i,t] <= limit_a[c] cos(spacing_c / 2)``,
    an inner polygon of ``|sum_i phasor_coef[c,i] x[i,t]| <= limit_a[c]``.
    """
    T = p.slots
    R, hi_r, owner = polygon(p.phasor_coef, p.phasor_limit_a, loss)
    coo = R.tocoo()
    pr, ps = coo.row.astype(np.int64), coo.col.astype(np.int64)
    rep, cols, _ = _expand(pr, ps, p.window_slots, offsets)
    vals = np.repeat(coo.data, p.window_slots[ps])
    hi = np.repeat(hi_r, T)
    lazy = np.ones(hi.size, dtype=bool)
    entity, slot = _polygon_identity(owner, T)
    return Block("phasor", rep * T + var_slot[cols], cols, vals, np.full(hi.size, -INF), hi, lazy, entity, slot)


def _polygon_identity(owner: Ints, T: int) -> tuple[Ints, Ints]:
    """Entity and slot of polygon rows numbered ``row * T + slot`` (``owner``: each row's limit)."""
    side = np.arange(owner.size, dtype=np.int64) - np.searchsorted(owner, owner)
    entity = np.repeat(owner * POLYGON_SIDES_MAX + side, T)
    return entity, np.tile(np.arange(T, dtype=np.int64), owner.size)


@dataclass(frozen=True, slots=True)
class PhasorGroups:
    """Sessions with identical current-limit coefficients, summed per slot into one column.

    On the Caltech network every EVSE of a garage on one line pair adds the same phasor to
    the same lines: its polygon rows name each of them, 6-11 rows per line and slot. With
    ``y[g,t] = sum_{i in g} x[i,t]`` (one equality row per group and slot) the polygon rows
    name the groups instead: the same constraints on ``x``, the LP's nonzeros cut 5-20x
    (ACN-Sim Caltech 500: 338k -> ~25k; docs/benchmarks/optimizer.md).
    """

    label: Ints
    """Per session: its group (-1: in no current limit, or nothing to plan)."""
    coef: sp.csr_array
    """(C, G): each group's complex A per kW in each limit."""
    first: Ints
    """Per group: the first slot any member may charge in; ``end``: one past the last."""
    end: Ints
    rep: Ints
    """Per group: its first member (the coefficients it was grouped by are this one's)."""


def phasor_groups(p: Problem) -> PhasorGroups:
    """Group the sessions by their column of ``p.phasor_coef`` (exact equality)."""
    csc = sp.csc_array(p.phasor_coef)
    csc.sort_indices()
    live = p.window_slots > 0
    label = np.full(p.n, -1, dtype=np.int64)
    grouped = np.flatnonzero(live & (np.diff(csc.indptr) > 0)).astype(np.int64)
    labels, reps = equal_rows(csc.indptr, csc.indices, csc.data, grouped)
    label[grouped] = labels
    G = int(reps.size)
    first = np.full(G, p.slots, dtype=np.int64)
    end = np.zeros(G, dtype=np.int64)
    members = np.flatnonzero(label >= 0)
    np.minimum.at(first, label[members], p.first[members])
    np.maximum.at(end, label[members], p.end[members])
    coef = sp.csr_array(csc[:, reps]) if G else sp.csr_array((csc.shape[0], 0))
    return PhasorGroups(label, coef, first, np.maximum(end, first), reps)


def grouped_phasor_rows(
    p: Problem, g: PhasorGroups, var_sess: Ints, var_slot: Ints, y_col: int, loss: float
) -> tuple[Block, Block, Ints]:
    """The polygon rows over group sums (see :class:`PhasorGroups`): the definition rows
    ``sum_{i in g} x[i,t] - y[g,t] = 0`` and the polygon on ``y``; and per ``x`` column its ``y``
    column (-1: none)."""
    T = p.slots
    lens = g.end - g.first
    y_off = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64) if lens.size else lens
    n_y = int(lens.sum())
    gx = g.label[var_sess]
    j = np.flatnonzero(gx >= 0)
    y_of_x = np.full(var_sess.size, -1, dtype=np.int64)
    y_of_x[j] = y_off[gx[j]] + var_slot[j] - g.first[gx[j]]
    ys = np.arange(n_y, dtype=np.int64)
    y_group = np.repeat(np.arange(lens.size, dtype=np.int64), lens)
    define = Block(
        "phasor_sum",
        np.concatenate((y_of_x[j], ys)),
        np.concatenate((j, y_col + ys)),
        np.concatenate((np.ones(j.size), -np.ones(n_y))),
        np.zeros(n_y),
        np.zeros(n_y),
        entity=y_group,
        slot=g.first[y_group] + ys - y_off[y_group],
    )
    R, hi_r, owner = polygon(g.coef, p.phasor_limit_a, loss)
    coo = R.tocoo()
    pr, pg = coo.row.astype(np.int64), coo.col.astype(np.int64)
    rep, cols, grp = _expand(pr, pg, lens, y_off)
    slot = g.first[grp] + cols - y_off[grp]
    vals = np.repeat(coo.data, lens[pg])
    hi = np.repeat(hi_r, T)
    lazy = np.ones(hi.size, dtype=bool)
    entity, row_slot = _polygon_identity(owner, T)
    poly = Block("phasor", rep * T + slot, y_col + cols, vals, np.full(hi.size, -INF), hi, lazy, entity, row_slot)
    return define, poly, y_of_x


def request_rows(p: Problem, var_sess: Ints, var_slot: Ints, u_col: int) -> Block:
    """Per session ``i``: ``sum_t dur_h[t] x[i,t] + u[i] = need_kwh[i]`` (``u``: shortfall)."""
    n = p.n
    rows = np.concatenate((var_sess, np.arange(n, dtype=np.int64)))
    cols = np.concatenate((np.arange(var_sess.size, dtype=np.int64), u_col + np.arange(n, dtype=np.int64)))
    vals = np.concatenate((p.dur_h[var_slot], np.ones(n)))
    sessions = np.arange(n, dtype=np.int64)
    return Block("request", rows, cols, vals, p.need_kwh.copy(), p.need_kwh.copy(), None, sessions, np.full(n, -1))


def fairness_rows(p: Problem, u_col: int, z_col: int) -> Block:
    """Per session with a need: ``u[i] / need_kwh[i] - z <= 0`` (``z``: largest relative shortfall)."""
    sess = np.flatnonzero(p.need_kwh > 0)
    m = sess.size
    rows = np.concatenate((np.arange(m), np.arange(m))).astype(np.int64)
    cols = np.concatenate((u_col + sess, np.full(m, z_col))).astype(np.int64)
    vals = np.concatenate((1.0 / p.need_kwh[sess], -np.ones(m)))
    entity = sess.astype(np.int64)
    return Block("fairness", rows, cols, vals, np.full(m, -INF), np.zeros(m), None, entity, np.full(m, -1))


def spread_rows(p: Problem, var_sess: Ints, var_slot: Ints, peak_col: int, slots: int) -> Block:
    """Per ``x[i,t]`` with ``t < slots`` (an exact slot): ``x[i,t] - peak[i] <= 0``."""
    j = np.flatnonzero(var_slot < slots).astype(np.int64)
    m = j.size
    r = np.arange(m, dtype=np.int64)
    rows = np.concatenate((r, r))
    cols = np.concatenate((j, peak_col + var_sess[j]))
    vals = np.concatenate((np.ones(m), -np.ones(m)))
    return Block("spread", rows, cols, vals, np.full(m, -INF), np.zeros(m), None, var_sess[j], var_slot[j])


def smoothness_rows(var_sess: Ints, var_slot: Ints, d_col: int) -> Block:
    """Per consecutive pair ``(j, j+1)`` of one session: ``-d_j <= x[j+1] - x[j] <= d_j``."""
    pair = np.flatnonzero(var_sess[1:] == var_sess[:-1]).astype(np.int64)
    m = pair.size
    r = np.arange(m, dtype=np.int64)
    d = d_col + r
    rows = np.concatenate((r, r, r, m + r, m + r, m + r))
    cols = np.concatenate((pair + 1, pair, d, pair, pair + 1, d))
    ones = np.ones(m)
    vals = np.concatenate((ones, -ones, -ones, ones, -ones, -ones))
    entity = np.concatenate((2 * var_sess[pair], 2 * var_sess[pair] + 1))
    slot = np.concatenate((var_slot[pair], var_slot[pair]))
    return Block("smoothness", rows, cols, vals, np.full(2 * m, -INF), np.zeros(2 * m), None, entity, slot)


def objective(p: Problem, w: Weights, var_sess: Ints, var_slot: Ints, n_cols: int) -> Floats:
    """Cost vector (minimized): the negative of the weighted energy described in :class:`Weights`."""
    cost = np.zeros(n_cols)
    position = p.slot_position(var_slot)
    gain = 1.0 + w.departure * p.bonus[var_sess] + w.early * (1.0 - position) - w.price * p.price_rel[var_slot]
    cost[: var_sess.size] = -p.dur_h[var_slot] * gain
    # z is relative; scale it by an upper bound of the energy any schedule delivers so the
    # weight keeps its meaning (a share of delivered energy) whatever the site size.
    site_cap = float((np.minimum(p.node_cap_kw[0], 1e12) * p.dur_h).sum())
    cost[var_sess.size + p.n] = w.fairness * min(float(p.need_kwh.sum()), site_cap)
    return cost


def build(
    p: Problem, w: Weights | None = None, *, current_limit_loss: float = DEFAULT_LOSS, group_phasors: bool = True
) -> LpMatrices:
    """Assemble every family into one CSC matrix with bounds and costs (``current_limit_loss``:
    the phasor polygon's precision, see ``ems.optimizer.phasor``; ``group_phasors``: polygon
    rows over group sums when that pays, :class:`PhasorGroups`; ``False``: over each session)."""
    w = w or Weights()
    var_sess, var_slot, offsets = variables(p)
    n_x = var_sess.size
    u_col = n_x
    z_col = n_x + p.n
    n_cols = z_col + 1
    x_hi = np.minimum(p.max_kw[var_sess] * p.window_share(var_sess, var_slot), p.need_kwh[var_sess] / p.dur_h[var_slot])
    blocks = [
        request_rows(p, var_sess, var_slot, u_col),
        drop_slack(node_power_rows(p, var_slot, offsets), x_hi),
        drop_slack(node_phase_rows(p, var_slot, offsets), x_hi),
        fairness_rows(p, u_col, z_col),
    ]
    peak_col = d_col = y_col = -1
    y_of_x = np.zeros(0, dtype=np.int64)
    y_hi = np.zeros(0)
    y_group = y_slot = group_rep = np.zeros(0, dtype=np.int64)
    if p.has_phasors:
        groups = phasor_groups(p)
        if group_phasors and _grouping_pays(p, groups):
            y_col = n_cols
            define, poly, y_of_x = grouped_phasor_rows(p, groups, var_sess, var_slot, y_col, current_limit_loss)
            assert define.entity is not None and define.slot is not None  # set by grouped_phasor_rows
            y_group, y_slot, group_rep = define.entity, define.slot, groups.rep
            summed = y_of_x >= 0
            y_hi = np.bincount(y_of_x[summed], weights=x_hi[summed], minlength=define.lo.size).astype(np.float64)
            n_cols += y_hi.size
            blocks += [define, drop_slack(poly, np.concatenate((x_hi, np.zeros(y_col - n_x), y_hi)))]
        else:
            blocks.append(drop_slack(phasor_rows(p, var_slot, offsets, current_limit_loss), x_hi))
    if w.spread > 0 and n_x:
        peak_col = n_cols
        blocks.append(spread_rows(p, var_sess, var_slot, peak_col, w.spread_slots))
        n_cols += p.n
    if w.smoothness > 0:
        d_col = n_cols
        blocks.append(smoothness_rows(var_sess, var_slot, d_col))
        n_cols += int(np.count_nonzero(var_sess[1:] == var_sess[:-1])) if n_x else 0
    rows, cols, vals, lo, hi, families = _stack(blocks)
    lazy = np.concatenate([b.lazy if b.lazy is not None else np.zeros(b.lo.size, dtype=bool) for b in blocks])
    row_entity = np.concatenate([b.entity if b.entity is not None else np.full(b.lo.size, -1) for b in blocks])
    row_slot = np.concatenate([b.slot if b.slot is not None else np.full(b.lo.size, -1) for b in blocks])
    A = sp.csc_array((vals, (rows, cols)), shape=(lo.size, n_cols))
    col_lo = np.zeros(n_cols)
    col_hi = np.full(n_cols, INF)
    col_hi[:n_x] = x_hi
    col_hi[u_col:z_col] = p.need_kwh
    col_hi[z_col] = 1.0
    if y_col >= 0:
        col_hi[y_col : y_col + y_hi.size] = y_hi
    cost = objective(p, w, var_sess, var_slot, n_cols)
    if peak_col >= 0:
        cost[peak_col : peak_col + p.n] = w.spread * p.slot_h
    if d_col >= 0:
        cost[d_col:] = w.smoothness * p.slot_h
    return LpMatrices(
        A,
        cost,
        col_lo,
        col_hi,
        lo,
        hi,
        var_sess,
        var_slot,
        n_x,
        u_col,
        z_col,
        families,
        lazy,
        peak_col,
        d_col,
        y_col,
        y_of_x,
        int(y_hi.size),
        y_group,
        y_slot,
        group_rep,
        row_entity.astype(np.int64),
        row_slot.astype(np.int64),
    )


def _grouping_pays(p: Problem, g: PhasorGroups) -> bool:
    """Sum the groups when they average two or more sessions per limit: each polygon row then
    names half the columns or fewer, and a limit has 6-11 rows per slot behind a 208 V
    transformer (one at least), while the sums add one entry per session and slot."""
    members = sp.csc_array(p.phasor_coef)[:, np.flatnonzero(g.label >= 0)]
    return 2 * int(g.coef.nnz) <= int(members.nnz)


def drop_slack(b: Block, x_hi: Floats) -> Block:
    """``b`` without the rows that cannot bind: ``<=`` rows whose largest possible activity
    (every column with a positive coefficient at its upper bound) is within the limit. Exact: the LP is unchanged.

    On workplace days most circuit rows go (a feeder at 60 % of its chargers' sum binds only
    when enough of its sessions are present at once), and so do slots nobody is plugged in.
    """
    if b.rows.size == 0 and b.hi.size == 0:
        return b
    most = np.bincount(b.rows, weights=np.maximum(b.vals, 0.0) * x_hi[b.cols], minlength=b.hi.size)
    keep = most > b.hi * (1.0 + 1e-9) + 1e-12
    new_row = np.cumsum(keep) - 1
    entries = keep[b.rows]
    lazy = None if b.lazy is None else b.lazy[keep]
    entity = None if b.entity is None else b.entity[keep]
    slot = None if b.slot is None else b.slot[keep]
    rows = new_row[b.rows[entries]]
    return Block(b.name, rows, b.cols[entries], b.vals[entries], b.lo[keep], b.hi[keep], lazy, entity, slot)


def _cat(rows: list[Ints], cols: list[Ints], vals: list[Floats]) -> tuple[Ints, Ints, Floats]:
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _stack(blocks: list[Block]) -> tuple[Ints, Ints, Floats, Floats, Floats, tuple[tuple[str, int, int], ...]]:
    offset = 0
    rows: list[Ints] = []
    families: list[tuple[str, int, int]] = []
    for b in blocks:
        rows.append(b.rows + offset)
        families.append((b.name, offset, offset + b.lo.size))
        offset += b.lo.size
    r, c, v = _cat(rows, [b.cols for b in blocks], [b.vals for b in blocks])
    lo = np.concatenate([b.lo for b in blocks])
    hi = np.concatenate([b.hi for b in blocks])
    return r, c, v, lo, hi, tuple(families)
