"""A non-uniform planning horizon: exact slots near now, coarser blocks later.

Only the first slot(s) of a plan are ever executed: the controller re-plans on the next
event, the horizon moving on. So the LP keeps the first ``exact_slots`` slots as they are
and merges the later ones into blocks that double in length every ``per_level`` blocks,
up to ``max_block`` slots (96 slots of 15 min: 8 + 2x2 + 2x4 + 2x8 + 3x16 + 12 = 18 LP
slots; 288 of 5 min: 30). The LP then has 4-10x fewer columns and rows. Why 8 exact slots
and not 4 (14 LP slots, 5-25 % faster): over 40 replayed 1,000 x 96 days 4 exact slots
fully met 0.33 % fewer sessions than the full model on average, 8 exact slots 0.02 %, as
close as the full model is to itself with one objective weight nudged by 1 %
(docs/benchmarks/optimizer.md).

In a block, a session's variable is its average power over the whole block: its energy is
``x * length * slot_h``, its bound ``max_kw`` times the share of the block inside its
window, and a node's limit is the block's smallest. :func:`expand` spreads a block's energy
evenly over the session's slots in it; :func:`ems.optimizer.repair.scale_into_limits` then
fixes the (rare, later) slots where sessions leaving mid-block overload a node. The
quality cost, measured on replayed days against the uniform LP, is in
docs/benchmarks/optimizer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ems.optimizer.problem import Coarse, Floats, Ints, Problem


@dataclass(frozen=True, slots=True)
class Horizon:
    exact_slots: int = 8
    """Slots kept as they are from now on (at least the ones executed before the next
    re-plan; the controller sends 15 minutes = 3 of its 5-minute slots). Fewer cost fully
    met sessions on replayed days: 4 lost 0.33 % on average, 6 lost 0.23 %, 8 and 32 lost
    0.02-0.10 %, within the noise floor (docs/benchmarks/optimizer.md)."""
    per_level: int = 2
    """Blocks of each length before the length doubles."""
    max_block: int = 16
    """Longest block, in slots."""
    min_columns: int = 6_000
    """Below this many LP columns (session-slot pairs) the uniform LP is solved: it is fast
    enough and exact."""


DEFAULT_HORIZON = Horizon()


def blocks(slots: int, h: Horizon) -> tuple[Ints, Ints]:
    """(start, length) of each block covering ``slots`` slots."""
    lengths: list[int] = []
    covered = 0
    length, count = min(2, h.max_block), 0
    while covered < slots:
        if covered >= h.exact_slots:
            if count == h.per_level and length < h.max_block:
                length, count = min(2 * length, h.max_block), 0
            count += 1
        take = min(length if covered >= h.exact_slots else 1, slots - covered)
        lengths.append(take)
        covered += take
    size = np.asarray(lengths, dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(size)[:-1])).astype(np.int64)
    return start, size


def coarsen(p: Problem, h: Horizon) -> Problem:
    """``p`` over blocks (returns ``p`` itself when it has too few columns to gain)."""
    if p.coarse is not None or int(p.window_slots.sum()) < h.min_columns:
        return p
    start, length = blocks(p.slots, h)
    if start.size == p.slots:
        return p
    block_of = np.repeat(np.arange(start.size, dtype=np.int64), length)
    has = p.end > p.first
    first = np.where(has, block_of[np.clip(p.first, 0, p.slots - 1)], 0)
    end = np.where(has, block_of[np.clip(p.end - 1, 0, p.slots - 1)] + 1, 0)
    return replace(
        p,
        first=first.astype(np.int64),
        end=end.astype(np.int64),
        node_cap_kw=np.minimum.reduceat(p.node_cap_kw, start, axis=1),
        site_overload_kw=np.maximum.reduceat(p.site_overload_kw, start),
        price_rel=np.add.reduceat(p.price_rel, start) / length,
        coarse=Coarse(start, length, p.first.copy(), p.end.copy()),
    )


def expand(fine: Problem, coarse: Problem, x: Floats) -> Floats:
    """A block plan ``x`` (kW, average over each block) as power per snapshot slot.

    A session's block energy is spread evenly over its slots in the block when that is at
    least its minimum power; otherwise it is concentrated into as few slots as keep it at
    or above the minimum (staggered by session, so sessions do not all pile onto a block's
    first slot): spreading it evenly would put it below the minimum current everywhere,
    and the repair would have to pause it.
    """
    c = coarse.coarse
    if c is None:
        return x
    out = np.zeros((fine.n, fine.slots))
    sessions = np.arange(fine.n, dtype=np.int64)
    for b in range(c.start.size):
        lo = np.maximum(c.fine_first, c.start[b])
        hi = np.minimum(c.fine_end, c.start[b] + c.length[b])
        avail = np.maximum(hi - lo, 0)
        energy = x[:, b] * c.length[b]  # kW x snapshot slots
        live = (avail > 0) & (energy > 0)
        if not live.any():
            continue
        per_slot = np.where(live, energy / np.maximum(avail, 1), 0.0)
        even = live & (per_slot >= fine.min_kw)
        if c.length[b] == 1:
            even = live
        for j in range(int(c.length[b])):
            t = lo + j
            take = even & (j < avail)
            out[sessions[take], t[take]] = per_slot[take]
        packed = live & ~even
        if packed.any():
            k = np.clip(np.floor(energy / np.maximum(fine.min_kw, 1e-12)), 1, np.maximum(avail, 1)).astype(np.int64)
            power = energy / k
            offset = sessions % np.maximum(avail, 1)
            for j in range(int(c.length[b])):
                take = packed & (j < k)
                t = lo + (offset + j) % np.maximum(avail, 1)
                out[sessions[take], t[take]] = power[take]
    return out


def aggregate(coarse: Problem, x: Floats) -> Floats:
    """A plan per snapshot slot (kW) as the average over each block (inverse of :func:`expand`)."""
    c = coarse.coarse
    if c is None:
        return x
    out: Floats = np.add.reduceat(x, c.start, axis=1) / c.length[None, :]
    return out
