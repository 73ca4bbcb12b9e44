"""Stage 1: a validated snapshot compiled into flat numpy arrays every algorithm shares.

Internally power is in kW and energy in kWh (coefficients near 1 keep the LP well scaled);
outputs convert back to W and Wh.

Time windows: session ``i`` may draw power in slots ``first[i] <= t < end[i]``, the slots
lying entirely inside ``[arrival, departure)`` (a session already plugged in before
``start`` begins at slot 0). So a schedule never charges outside a window, even when
arrival or departure fall mid-slot.

Phase loading: a session drawing ``p`` kW on ``m`` phases at ``V`` volts draws
``1000 p / (m V)`` A on each grid phase its EVSE maps those phases to; ``amps_per_kw[i, q]``
holds that coefficient for grid phase ``q`` (0 when it does not load ``q``, and for an EVSE
wired line-to-line: its line currents are phasors, in ``phasor_coef``).

Phasor limits: ``phasor_coef[c, i]`` is the complex A per kW session ``i`` adds to limit ``c``
(``|phasor_coef[c] @ x_t| <= phasor_limit_a[c]``; see ``ems.optimizer.phasor``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.domain.units import ALL_PHASES
from ems.optimizer.draw import learned
from ems.optimizer.phasor import PHASE_ANGLE_DEG, same_angle
from ems.optimizer.snapshot import SITE_NODE_ID, Snapshot

MIN_LIMIT_A = 1e-3
MIN_LIMIT_KW = 1e-6
MIN_NEED_KWH = 1e-6

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Coarse:
    """LP slots as blocks of snapshot slots: block ``b`` covers ``start[b] .. start[b] + length[b]``."""

    start: Ints
    length: Ints
    fine_first: Ints
    """Each session's window in snapshot slots (the LP's ``first``/``end`` are in blocks)."""
    fine_end: Ints


@dataclass(frozen=True, slots=True)
class Problem:
    """Arrays over ``n`` sessions, ``slots`` slots and ``K`` nodes (node 0 is the site)."""

    snapshot: Snapshot
    slot_h: float
    first: Ints
    """First slot each session may charge in."""
    end: Ints
    """One past the last slot (``end <= first``: no slot in the horizon)."""
    need_kwh: Floats
    """Energy still requested: ``max(energy_wh - delivered_wh, 0) / 1000``."""
    max_kw: Floats
    """Own limit: min(EV max, EVSE max current x voltage x phases)."""
    min_kw: Floats
    """Lowest power the EVSE may offer while charging (IEC 61851 minimum current)."""
    amps_per_kw: Floats
    """(n, 3): A drawn on grid phase L1/L2/L3 per kW of the session."""
    bonus: Floats
    """(n,) in [0, 1]: 1 for the highest priority and earliest departure, 0 for the last."""
    node_ids: tuple[str, ...]
    node_cap_kw: Floats
    """(K, slots): power limit per node and slot; ``inf`` when the node has no W limit."""
    node_phase_a: Floats
    """(K, 3): per-phase current limit per node; ``inf`` when unlimited."""
    incidence: sp.csr_array
    """(K, n): 1 when the session's EVSE sits under the node (directly or below)."""
    site_overload_kw: Floats
    """(slots,): base load minus PV above the site capacity (the EVs cannot fix it)."""
    price_rel: Floats
    """(slots,): prices scaled to [0, 1] (0 when there are no prices or all are equal)."""
    volts_phases: Floats
    """(n,): voltage x phases the session draws on: its current per phase is ``1000 x / volts_phases``."""
    phasor_coef: sp.csr_array
    """(C, n) complex: A per kW each session adds to each :class:`CurrentLimit` (C may be 0)."""
    phasor_limit_a: Floats
    """(C,): the limits' magnitudes (A)."""
    phasor_ids: tuple[str, ...] = ()
    coarse: Coarse | None = None
    """Set on a problem planned over a non-uniform horizon (horizon.py): its slots are blocks
    of the snapshot's slots; ``None``: one LP slot per snapshot slot."""

    @property
    def has_phasors(self) -> bool:
        return bool(self.phasor_limit_a.size)

    @property
    def n(self) -> int:
        return int(self.first.shape[0])

    @property
    def slots(self) -> int:
        return self.snapshot.slots if self.coarse is None else int(self.coarse.length.size)

    @property
    def dur_h(self) -> Floats:
        """(slots,): hours per LP slot (``slot_h`` each, or a block's length times it)."""
        if self.coarse is None:
            return np.full(self.slots, self.slot_h)
        out: Floats = (self.coarse.length * self.slot_h).astype(np.float64)
        return out

    def slot_position(self, slot: Ints) -> Floats:
        """Where LP slots start, as a fraction of the snapshot's horizon (for the ``early`` weight)."""
        T = max(self.snapshot.slots, 1)
        start = slot if self.coarse is None else self.coarse.start[slot]
        out: Floats = (start / T).astype(np.float64)
        return out

    def window_share(self, sess: Ints, slot: Ints) -> Floats:
        """Share of each (session, LP slot) pair's duration inside the session's window (1 when uniform)."""
        if self.coarse is None:
            return np.ones(sess.size)
        c = self.coarse
        lo = np.maximum(c.fine_first[sess], c.start[slot])
        hi = np.minimum(c.fine_end[sess], c.start[slot] + c.length[slot])
        out: Floats = np.maximum(hi - lo, 0) / c.length[slot]
        return out

    @property
    def window_slots(self) -> Ints:
        """Slots each session may charge in, with no window when nothing is needed."""
        live = (self.need_kwh > 0) & (self.max_kw > 0)
        return np.where(live, np.maximum(self.end - self.first, 0), 0)

    def active(self) -> npt.NDArray[np.bool_]:
        """(n, slots): the session may charge in the slot (window and need)."""
        t = np.arange(self.slots)
        live = (self.need_kwh > 0) & (self.max_kw > 0)
        return live[:, None] & (t[None, :] >= self.first[:, None]) & (t[None, :] < self.end[:, None])


def compile_problem(snapshot: Snapshot) -> Problem:
    """Turn a valid snapshot into arrays (call ``snapshot.validate()`` first)."""
    snap = snapshot
    slot_h = snap.slot_s / 3600.0
    evses = {e.id: e for e in snap.evses}
    node_ids = (SITE_NODE_ID, *(c.id for c in snap.circuits))
    node_index = {c.id: k + 1 for k, c in enumerate(snap.circuits)}
    parent = {c.id: c.parent for c in snap.circuits}
    n = len(snap.sessions)

    # Per session, in Python numbers (a numpy scalar store per field and session cost ~1 us
    # each at 500 sessions); the arrays are made once after the loop.
    first_l: list[int] = []
    end_l: list[int] = []
    need_l: list[float] = []
    max_l: list[float] = []
    min_l: list[float] = []
    volts_l: list[float] = []
    departure_l: list[float] = []
    priority_l: list[float] = []
    amps = np.zeros((n, 3))
    sessions_at: dict[str, list[tuple[int, int]]] = {}
    rows: list[int] = []
    path_len: list[int] = []
    path_of: dict[str | None, list[int]] = {}  # per circuit: the node rows above an EVSE on it
    start, slot_s, slots = snap.start, snap.slot_s, snap.slots
    for i, s in enumerate(snap.sessions):
        e = evses[s.evse]
        first_l.append(max(0, math.ceil((s.arrival - start).total_seconds() / slot_s)))
        end_l.append(min(slots, math.floor((s.departure - start).total_seconds() / slot_s)))
        need_l.append(max(s.energy_wh - s.delivered_wh, 0.0) / 1000.0)
        took = learned(s, e)
        phases = took.phases or e.phases
        volts_phases = e.voltage_v * phases
        own = (e.max_a if took.max_a is None else took.max_a) * volts_phases / 1000.0
        top = own if s.max_w is None else min(own, s.max_w / 1000.0)
        max_l.append(top)
        min_l.append(min(e.min_a * volts_phases / 1000.0, top))
        volts_l.append(volts_phases)
        if e.lines is None:
            for q in e.phase_map[:phases]:
                amps[i, ALL_PHASES.index(q)] = 1000.0 / volts_phases
        sessions_at.setdefault(e.id, []).append((i, phases))
        departure_l.append((s.departure - start).total_seconds())
        priority_l.append(s.priority)
        path = path_of.get(e.circuit)
        if path is None:
            path = path_of[e.circuit] = [0]
            node: str | None = e.circuit
            while node is not None:
                path.append(node_index[node])
                node = parent[node]
        rows.extend(path)
        path_len.append(len(path))
    first = np.asarray(first_l, dtype=np.int64)
    end = np.asarray(end_l, dtype=np.int64)
    need = np.asarray(need_l, dtype=np.float64)
    max_kw = np.asarray(max_l, dtype=np.float64)
    min_kw = np.asarray(min_l, dtype=np.float64)
    volts = np.asarray(volts_l, dtype=np.float64)
    departure_s = np.asarray(departure_l, dtype=np.float64)
    priority = np.asarray(priority_l, dtype=np.float64)
    # Below 1 mWh a request is met: meters resolve 1 Wh, and 1/need must stay finite in the LP.
    need[need < MIN_NEED_KWH] = 0.0
    K = len(node_ids)
    cols = np.repeat(np.arange(n, dtype=np.int64), path_len)
    incidence = sp.csr_array((np.ones(len(rows)), (np.array(rows), cols)), shape=(K, n))

    cap = np.full((K, snap.slots), np.inf)
    phase_a = np.full((K, 3), np.inf)
    overload = np.zeros(snap.slots)
    if snap.site.capacity_w is not None:
        site_w = np.asarray(snap.site.capacity_w, dtype=np.float64)
        if snap.site.base_load_w is not None:
            site_w = site_w - np.asarray(snap.site.base_load_w)
        if snap.site.pv_w is not None:
            site_w = site_w + np.asarray(snap.site.pv_w)
        overload = np.maximum(-site_w, 0.0) / 1000.0
        cap[0] = np.maximum(site_w, 0.0) / 1000.0
    for q, limit in snap.site.phase_limits_a.items():
        phase_a[0, ALL_PHASES.index(q)] = limit
    for k, c in enumerate(snap.circuits, start=1):
        if c.capacity_w is not None:
            cap[k] = np.asarray(c.capacity_w, dtype=np.float64) / 1000.0
        for q, limit in c.phase_limits_a.items():
            phase_a[k, ALL_PHASES.index(q)] = limit

    # Below 1 mA and 1 mW a limit is zero: no meter or EVSE resolves less, and a positive
    # limit of 1e-14 A next to limits of tens of amps leaves HiGHS' tolerances short of the optimum.
    phase_a[phase_a < MIN_LIMIT_A] = 0.0
    cap[cap < MIN_LIMIT_KW] = 0.0
    phasor_coef, phasor_limit = _phasors(snap, sessions_at, volts)
    return Problem(
        snapshot=snap,
        slot_h=slot_h,
        first=first,
        end=end,
        need_kwh=need,
        max_kw=max_kw,
        min_kw=min_kw,
        amps_per_kw=amps,
        bonus=_bonus(priority, departure_s, need),
        node_ids=node_ids,
        node_cap_kw=cap,
        node_phase_a=phase_a,
        incidence=incidence,
        site_overload_kw=overload,
        price_rel=_price_rel(snap.prices, snap.slots),
        volts_phases=volts,
        phasor_coef=phasor_coef,
        phasor_limit_a=phasor_limit,
        phasor_ids=tuple(c.id for c in snap.current_limits),
    )


def _phasors(
    snap: Snapshot, sessions_at: dict[str, list[tuple[int, int]]], volts: Floats
) -> tuple[sp.csr_array, Floats]:
    """Each current limit's complex A per kW per session (see ``CurrentLimit`` for which terms count).

    Entry ``(c, i)`` sums, over the terms of limit ``c`` naming session ``i``'s EVSE,
    ``coef * exp(j angle) * 1000 / volts_phases[i]``; vectorised over the terms (a Caltech
    network of 500 sessions lists ~4,000 of them per snapshot)."""
    C, n = len(snap.current_limits), volts.size
    limit = np.asarray([c.limit_a for c in snap.current_limits], dtype=np.float64)
    # Below 1 mA a limit is zero, as the per-phase limits (MIN_LIMIT_A).
    limit[limit < MIN_LIMIT_A] = 0.0
    terms = [t for c in snap.current_limits for t in c.terms]
    if not terms or not sessions_at:
        return sp.csr_array((C, n), dtype=np.complex128), limit
    # Three lists, not zip(*terms): that holds an iterator per term (4,000 GC-tracked objects at
    # caltech 500, a cyclic-GC pass every ~700 of them).
    evse_ids = [t[0] for t in terms]
    coefs = [t[1] for t in terms]
    angles = [t[2] for t in terms]
    # math.cos / math.sin per distinct angle: the same values as the scalar formula
    trig = {a: (math.cos(math.radians(a)), math.sin(math.radians(a))) for a in set(angles)}
    coef = np.asarray(coefs, dtype=np.float64)
    unit_re = coef * np.asarray([trig[a][0] for a in angles])
    unit_im = coef * np.asarray([trig[a][1] for a in angles])
    # Sessions per EVSE, in session order: (position of the EVSE, its first entry, its count).
    slot_of = {evse: k for k, evse in enumerate(sessions_at)}
    per_evse = np.asarray([len(v) for v in sessions_at.values()], dtype=np.int64)
    first_of = np.concatenate(([0], np.cumsum(per_evse)[:-1]))
    flat = [ip for v in sessions_at.values() for ip in v]
    sess_flat = np.asarray([i for i, _ in flat], dtype=np.int64)
    phases_flat = np.asarray([ph for _, ph in flat], dtype=np.int64)
    pos = np.asarray([slot_of.get(e, -1) for e in evse_ids], dtype=np.int64)
    count = np.where(pos >= 0, per_evse[pos], 0)
    term = np.repeat(np.arange(pos.size, dtype=np.int64), count)
    within = np.arange(term.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    entry = first_of[pos[term]] + within
    keep = np.ones(term.size, dtype=bool)
    three = {e.id: e for e in snap.evses if e.lines is None and e.phases == 3}
    if three:
        # A term at one conductor's angle of a three-phase EVSE counts only for sessions using that conductor.
        conductor = np.full(pos.size, -1, dtype=np.int64)
        for k, (evse_id, angle) in enumerate(zip(evse_ids, angles, strict=True)):
            e = three.get(evse_id)
            if e is not None:
                at = next((q for q, ph in enumerate(e.phase_map) if same_angle(PHASE_ANGLE_DEG[ph], angle)), None)
                conductor[k] = -1 if at is None else at
        on = conductor[term]
        keep = (on < 0) | (on < phases_flat[entry])
    term, entry = term[keep], entry[keep]
    cols = sess_flat[entry]
    vals = np.empty(cols.size, dtype=np.complex128)
    vals.real = unit_re[term] * 1000.0 / volts[cols]
    vals.imag = unit_im[term] * 1000.0 / volts[cols]
    limit_of_term = np.repeat(np.arange(C, dtype=np.int64), [len(c.terms) for c in snap.current_limits])
    coef_m = sp.csr_array((vals, (limit_of_term[term], cols)), shape=(C, n))
    coef_m.sum_duplicates()
    return coef_m, limit


def _bonus(priority: Floats, departure_s: Floats, need_kwh: Floats) -> Floats:
    """Rank in [0, 1]: priority first, then an even blend of small remaining need and early departure.

    Early departure first is what EDF gets right; small remaining need first concentrates
    an unavoidable shortfall on few sessions, so more drivers leave fully charged.
    Measured online on workplace days (docs/benchmarks/optimizer.md): departure alone
    fully serves fewer sessions than EDF, need alone costs energy when re-ranked every
    re-plan, the even blend keeps energy within 0.02 % of the optimum and beats EDF.
    """
    if priority.size == 0:
        return np.zeros(0)
    key = 0.5 * _scaled(-departure_s) + 0.5 * _scaled(-need_kwh)
    levels = np.unique(priority)
    level = np.searchsorted(levels, priority).astype(np.float64)
    out: Floats = (level + key) / len(levels)
    return out


def _scaled(v: Floats) -> Floats:
    """``v`` mapped onto [0, 1] (all zeros when constant)."""
    span = float(v.max() - v.min())
    out: Floats = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    return out


def _price_rel(prices: tuple[float, ...] | None, slots: int) -> Floats:
    if prices is None:
        return np.zeros(slots)
    p = np.asarray(prices, dtype=np.float64)
    span = float(p.max() - p.min())
    return (p - p.min()) / span if span > 0 else np.zeros(slots)
