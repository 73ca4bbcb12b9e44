"""A simplex basis carried from one re-plan to the next (issue 12, item 1).

Between two re-plans five minutes apart most sessions, rows and statuses persist, but the
LP is rebuilt from scratch: its columns and rows are renumbered. So every column and row is
given an identity that survives the rebuild: its family (``x``, ``u``, ... ``request``,
``phasor`` ...), its entity within the family, named (a session id, a node id, a phasor group
by its coefficients, a limit id and a side of its polygon) and the span of *absolute* snapshot
slots it covers (slots since the epoch: a non-uniform horizon's blocks move with the plan,
a column in a block of the new plan takes the status of the old column covering its first slot).

:func:`carry` maps the last plan's final basis (which columns and rows were basic) onto a new
LP. What the last plan did not have starts where a cold start would: a new session's power
columns at zero with its shortfall ``u`` basic (its request row then holds), a new group sum
``y`` basic (its definition row holds), a new row's activity basic (the row is slack;
a lazy one is left out unless the start fills it, lp.py). HiGHS
takes the result as an *alien* basis and completes it (lp.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ems.optimizer.lp import ABSENT, AT_LOWER, AT_UPPER, BASIC, Statuses
from ems.optimizer.matrices import POLYGON_SIDES_MAX, LpMatrices
from ems.optimizer.problem import Ints, Problem

Bools = npt.NDArray[np.bool_]

COL_FAMILIES = ("x", "u", "z", "peak", "d", "y")
"""Column families, in the LP's column order (matrices.py)."""
KIND = {
    "x": ("session", 1),
    "u": ("session", 1),
    "z": ("z", 1),
    "peak": ("session", 1),
    "d": ("session", 1),
    "y": ("group", 1),
    "request": ("session", 1),
    "fairness": ("session", 1),
    "spread": ("session", 1),
    "smoothness": ("session", 2),
    "node_power": ("node", 1),
    "node_phase": ("node", 3),
    "phasor_sum": ("group", 1),
    "phasor": ("limit", POLYGON_SIDES_MAX),
}
"""Per family: what its entities are made of, and how many per one of those (an entity is
``index * per + within``, matrices.ROW_ENTITY): the index is named, the rest is arithmetic."""
BASIC_WHEN_NEW = frozenset({"u", "y"})
"""Column families that start basic when the last plan had no such column."""
NONBASIC_WHEN_NEW = frozenset({"request", "phasor_sum"})
"""Row families that start at their bound when the last plan had no such row (equality rows
whose ``u`` or ``y`` is basic)."""
_SLOT_BITS = 32
_FAMILY_SHIFT = 58


@dataclass(frozen=True, slots=True)
class Elements:
    """Columns or rows of one LP, each by family, entity and absolute slot span."""

    family: Ints
    """Index into ``families``."""
    entity: Ints
    start: Ints
    """First absolute slot covered (0 without a slot); ``end``: one past the last."""
    end: Ints
    families: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who each column and each row of an LP is (see the module docstring)."""

    cols: Elements
    rows: Elements
    names: dict[str, tuple[str, ...]]
    """Per kind of :data:`KIND`: the name of each index (session ids, node ids, ...)."""


@dataclass(frozen=True, slots=True)
class Carried:
    """A plan's LP identity and the final status of its columns and rows (lp.py's codes)."""

    identity: Identity
    col_status: Statuses
    row_status: Statuses


def identify(p: Problem, m: LpMatrices) -> Identity:
    """The identities of ``m``'s columns and rows (``p``: the problem ``m`` was built from)."""
    base = int(p.snapshot.start.timestamp()) // p.snapshot.slot_s
    if p.coarse is None:
        first = base + np.arange(p.slots + 1, dtype=np.int64)
        start, end = first[:-1], first[1:]
    else:
        start = base + p.coarse.start
        end = start + p.coarse.length
    n_cols = m.shape[1]
    family = np.zeros(n_cols, dtype=np.int64)
    entity = np.zeros(n_cols, dtype=np.int64)
    slot = np.full(n_cols, -1, dtype=np.int64)
    sessions = np.arange(p.n, dtype=np.int64)
    family[: m.n_x], entity[: m.n_x], slot[: m.n_x] = 0, m.var_sess, m.var_slot
    family[m.u_col : m.z_col], entity[m.u_col : m.z_col] = 1, sessions
    family[m.z_col] = 2
    if m.peak_col >= 0:
        family[m.peak_col : m.peak_col + p.n], entity[m.peak_col : m.peak_col + p.n] = 3, sessions
    if m.d_col >= 0:
        pair = np.flatnonzero(m.var_sess[1:] == m.var_sess[:-1])
        cols = slice(m.d_col, m.d_col + pair.size)
        family[cols], entity[cols], slot[cols] = 4, m.var_sess[pair], m.var_slot[pair]
    if m.y_col >= 0:
        cols = slice(m.y_col, m.y_col + m.n_y)
        family[cols], entity[cols], slot[cols] = 5, m.y_group, m.y_slot
    sizes = [hi - lo for _, lo, hi in m.families]
    row_family = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    names = {
        "session": tuple(s.id for s in p.snapshot.sessions),
        "z": ("z",),
        "group": _group_names(p, m),
        "node": p.node_ids,
        "limit": p.phasor_ids,
    }
    return Identity(
        Elements(family, entity, *_span(slot, start, end), COL_FAMILIES),
        Elements(row_family, m.row_entity, *_span(m.row_slot, start, end), tuple(n for n, _, _ in m.families)),
        names,
    )


def carry(last: Carried, new: Identity) -> tuple[Statuses, Statuses]:
    """The status each of ``new``'s columns and rows starts with, from ``last``'s final basis."""
    old = last.identity
    renamed = {kind: _renumber(old.names[kind], new.names[kind]) for kind in new.names}
    col_match = _match(old.cols, new.cols, renamed)
    row_match = _match(old.rows, new.rows, renamed)
    basic_new = [k for k, f in enumerate(new.cols.families) if f in BASIC_WHEN_NEW]
    col_new = np.where(np.isin(new.cols.family, basic_new), BASIC, AT_LOWER)
    bound_new = [k for k, f in enumerate(new.rows.families) if f in NONBASIC_WHEN_NEW]
    row_new = np.where(np.isin(new.rows.family, bound_new), AT_UPPER, ABSENT)
    col = np.where(col_match >= 0, last.col_status[np.maximum(col_match, 0)], col_new).astype(np.int8)
    row = np.where(row_match >= 0, last.row_status[np.maximum(row_match, 0)], row_new).astype(np.int8)
    return col, row


def _renumber(old: tuple[str, ...], new: tuple[str, ...]) -> Ints:
    """Per old index: the new index of the same name (-1: gone)."""
    code = {name: k for k, name in enumerate(new)}
    return np.fromiter((code.get(name, -1) for name in old), dtype=np.int64, count=len(old))


def _match(old: Elements, new: Elements, renamed: dict[str, Ints]) -> Ints:
    """Per new element: the old element of the same family and entity whose span covers its
    first slot (-1: none)."""
    # The old elements renumbered into the new plan's families and entities (-1: gone).
    entity = np.full(old.entity.size, -1, dtype=np.int64)
    family = np.full(old.entity.size, -1, dtype=np.int64)
    for f, name in enumerate(old.families):
        if name not in new.families:
            continue
        kind, per = KIND[name]
        members = np.flatnonzero(old.family == f)
        index = renamed[kind]
        e = old.entity[members]
        moved = index[e // per] if index.size else np.full(e.size, -1, dtype=np.int64)
        entity[members] = np.where(moved >= 0, moved * per + e % per, -1)
        family[members] = new.families.index(name)
    alive = np.flatnonzero(entity >= 0)
    if not alive.size:
        return np.full(new.family.size, -1, dtype=np.int64)
    old_key = _key(family[alive], entity[alive], old.start[alive])
    order = np.argsort(old_key, kind="stable")
    old_key, alive = old_key[order], alive[order]
    new_key = _key(new.family, new.entity, new.start)
    at = np.searchsorted(old_key, new_key, side="right") - 1
    found = at >= 0
    k = np.maximum(at, 0)
    found &= (old_key[k] >> _SLOT_BITS) == (new_key >> _SLOT_BITS)
    found &= new.start < old.end[alive[k]]
    out: Ints = np.where(found, alive[k], -1)
    return out


def _key(family: Ints, entity: Ints, start: Ints) -> Ints:
    out: Ints = (family << _FAMILY_SHIFT) | (entity << _SLOT_BITS) | start
    return out


def _span(slot: Ints, start: Ints, end: Ints) -> tuple[Ints, Ints]:
    """Absolute (start, end) per element of LP slot ``slot`` (-1: no slot, (0, 1))."""
    has = slot >= 0
    at = np.where(has, slot, 0)
    s = np.where(has, start[at], 0) if start.size else np.zeros(slot.size, dtype=np.int64)
    e = np.where(has, end[at], 1) if end.size else np.ones(slot.size, dtype=np.int64)
    return s.astype(np.int64), e.astype(np.int64)


def _group_names(p: Problem, m: LpMatrices) -> tuple[str, ...]:
    """A phasor group's name: its members' coefficients, by limit id."""
    if not m.group_rep.size:
        return ()
    csc = p.phasor_coef.tocsc()
    out = []
    for i in m.group_rep.tolist():
        lo, hi = int(csc.indptr[i]), int(csc.indptr[i + 1])
        terms = sorted(zip((p.phasor_ids[c] for c in csc.indices[lo:hi]), csc.data[lo:hi], strict=True))
        out.append(";".join(f"{c}={complex(v)!r}" for c, v in terms))
    return tuple(out)
