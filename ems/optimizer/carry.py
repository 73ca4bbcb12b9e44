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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ems.optimizer.lp import ABSENT, AT_LOWER, AT_UPPER, BASIC, Statuses
from ems.optimizer.matrices import POLYGON_SIDES_MAX, LpMatrices
from ems.optimizer.problem import Ints, Problem

Bools = npt.NDArray[np.bool_]

COL_FAMILIES = ("x", "u", "z", "peak", "d", "y")
"""Column families, in the LP's column order (matrices.py)."""
BASIC_WHEN_NEW = frozenset({"u", "y"})
"""Column families that start basic when the last plan had no such column."""
NONBASIC_WHEN_NEW = frozenset({"request", "phasor_sum"})
"""Row families that start at their bound when the last plan had no such row (equality rows
whose ``u`` or ``y`` is basic)."""
_SLOT_BITS = 32
_FAMILY_SHIFT = 58


@dataclass(frozen=True, slots=True)
class Identity:
    """Who each column and each row of an LP is (see the module docstring)."""

    col_family: Ints
    """Per column: index into :data:`COL_FAMILIES`."""
    col_entity: Ints
    col_start: Ints
    """Per column: first absolute slot covered (0 for columns without a slot); ``col_end``: one past the last."""
    col_end: Ints
    row_family: Ints
    """Per row: index into ``row_families`` (the LP's ``families`` names)."""
    row_entity: Ints
    row_start: Ints
    row_end: Ints
    row_families: tuple[str, ...]
    col_names: tuple[dict[int, str], ...]
    """Per column family: the name of each entity present (stable across plans)."""
    row_names: tuple[dict[int, str], ...]


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
    ids = tuple(s.id for s in p.snapshot.sessions)
    groups = _group_names(p, m)
    col_label: dict[str, Callable[[int], str]] = {
        "x": ids.__getitem__,
        "u": ids.__getitem__,
        "z": lambda _: "z",
        "peak": ids.__getitem__,
        "d": ids.__getitem__,
        "y": groups.__getitem__,
    }
    row_families = tuple(name for name, _, _ in m.families)
    sizes = [hi - lo for _, lo, hi in m.families]
    row_family = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    row_label = {name: _row_label(name, p, ids, groups) for name in row_families}
    col_start, col_end = _span(slot, start, end)
    row_start, row_end = _span(m.row_slot, start, end)
    return Identity(
        family,
        entity,
        col_start,
        col_end,
        row_family,
        m.row_entity,
        row_start,
        row_end,
        row_families,
        tuple(_names(family == f, entity, col_label[name]) for f, name in enumerate(COL_FAMILIES)),
        tuple(_names(row_family == f, m.row_entity, row_label[name]) for f, name in enumerate(row_families)),
    )


def carry(last: Carried, new: Identity) -> tuple[Statuses, Statuses]:
    """The status each of ``new``'s columns and rows starts with, from ``last``'s final basis."""
    old = last.identity
    col_match = _match(
        (old.col_family, old.col_entity, old.col_start, old.col_end, old.col_names, COL_FAMILIES),
        (new.col_family, new.col_entity, new.col_start, new.col_names, COL_FAMILIES),
    )
    row_match = _match(
        (old.row_family, old.row_entity, old.row_start, old.row_end, old.row_names, old.row_families),
        (new.row_family, new.row_entity, new.row_start, new.row_names, new.row_families),
    )
    col_new = np.where(np.isin(new.col_family, [COL_FAMILIES.index(f) for f in BASIC_WHEN_NEW]), BASIC, AT_LOWER)
    bound = np.isin(new.row_family, [k for k, f in enumerate(new.row_families) if f in NONBASIC_WHEN_NEW])
    row_new = np.where(bound, AT_UPPER, ABSENT)
    col = np.where(col_match >= 0, last.col_status[np.maximum(col_match, 0)], col_new).astype(np.int8)
    row = np.where(row_match >= 0, last.row_status[np.maximum(row_match, 0)], row_new).astype(np.int8)
    return col, row


def _match(
    old: tuple[Ints, Ints, Ints, Ints, tuple[dict[int, str], ...], tuple[str, ...]],
    new: tuple[Ints, Ints, Ints, tuple[dict[int, str], ...], tuple[str, ...]],
) -> Ints:
    """Per new element: the old element of the same family and entity whose span covers its
    first slot (-1: none)."""
    o_family, o_entity, o_start, o_end, o_names, o_families = old
    n_family, n_entity, n_start, n_names, n_families = new
    # The old elements renumbered into the new plan's families and entities (-1: gone).
    family_to_new = np.array([n_families.index(f) if f in n_families else -1 for f in o_families], dtype=np.int64)
    entity_to_new = np.full(o_entity.size, -1, dtype=np.int64)
    for f, names in enumerate(o_names):
        g = int(family_to_new[f]) if family_to_new.size else -1
        if g < 0 or not names:
            continue
        code = {name: e for e, name in n_names[g].items()}
        rows = np.flatnonzero(o_family == f)
        values, inverse = np.unique(o_entity[rows], return_inverse=True)
        lookup = np.array([code.get(names.get(int(v), ""), -1) for v in values], dtype=np.int64)
        entity_to_new[rows] = lookup[inverse]
    alive = np.flatnonzero(entity_to_new >= 0)
    if not alive.size:
        return np.full(n_family.size, -1, dtype=np.int64)
    old_key = _key(family_to_new[o_family[alive]], entity_to_new[alive], o_start[alive])
    order = np.argsort(old_key, kind="stable")
    old_key, alive = old_key[order], alive[order]
    new_key = _key(n_family, n_entity, n_start)
    at = np.searchsorted(old_key, new_key, side="right") - 1
    found = at >= 0
    k = np.maximum(at, 0)
    found &= (old_key[k] >> _SLOT_BITS) == (new_key >> _SLOT_BITS)
    found &= n_start < o_end[alive[k]]
    out: Ints = np.where(found, alive[k], -1)
    return out


def _key(family: Ints, entity: Ints, start: Ints) -> Ints:
    out: Ints = (family << _FAMILY_SHIFT) | (entity << _SLOT_BITS) | start
    return out


def _span(slot: Ints, start: Ints, end: Ints) -> tuple[Ints, Ints]:
    """Absolute (start, end) per element of LP slot ``slot`` (-1: no slot, (0, 1))."""
    has = slot >= 0
    s = np.where(has, start[np.where(has, slot, 0)] if start.size else 0, 0)
    e = np.where(has, end[np.where(has, slot, 0)] if end.size else 1, 1)
    return s.astype(np.int64), e.astype(np.int64)


def _names(members: Bools, entity: Ints, label: Callable[[int], str]) -> dict[int, str]:
    return {int(e): label(int(e)) for e in np.unique(entity[members])}


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


def _row_label(family: str, p: Problem, ids: tuple[str, ...], groups: tuple[str, ...]) -> Callable[[int], str]:
    if family in ("request", "fairness", "spread"):
        return ids.__getitem__
    if family == "smoothness":
        return lambda e: f"{ids[e // 2]}/{e % 2}"
    if family == "node_power":
        return p.node_ids.__getitem__
    if family == "node_phase":
        return lambda e: f"{p.node_ids[e // 3]}/{e % 3}"
    if family == "phasor_sum":
        return groups.__getitem__
    if family == "phasor":
        return lambda e: f"{p.phasor_ids[e // POLYGON_SIDES_MAX]}#{e % POLYGON_SIDES_MAX}"
    raise ValueError(f"unknown row family {family!r}")
