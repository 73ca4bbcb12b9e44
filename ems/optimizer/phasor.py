"""Line currents as phasors: exact magnitudes, the LP's inner polygon, and exact headroom.

A :class:`ems.optimizer.snapshot.CurrentLimit` bounds ``|z|`` with ``z = sum_i a_i x_i``,
``x_i >= 0`` the sessions' power (kW) and ``a_i`` complex (A per kW: the term's coefficient
times ``exp(j angle)`` over the session's volts x phases). ``|z| <= L`` is a second-order
cone; the LP plans it with an **inner** polygon, so a plan within the polygon is within the
exact limit, and the heuristics and repairs use the exact disc (:func:`room`).

The polygon: for directions ``phi_k``, ``Re(z exp(-j phi_k)) <= L cos(delta / 2)`` where
``delta`` is the spacing of the directions. Each is a tangent of the disc of radius
``L cos(delta/2)``; a point of ``z``'s cone whose angle lies within ``delta/2`` of some
``phi_k`` then has ``|z| <= L cos(delta/2) / cos(theta - phi_k) <= L`` (inner), and every
point with ``|z| <= L cos(delta/2)`` passes (the loss is at most ``1 - cos(delta/2)`` of the
radius: scaling the exact optimum down by that factor is feasible for the LP, so the LP's
energy is at most that far below the exact optimum).

Only the directions ``z`` can take matter: with ``x >= 0``, ``z`` lies in the cone spanned by
the ``a_i``. Behind a US 208 V transformer a line carries two line-to-line branches 60
degrees apart, and the primary of a delta-wye three at most 120 degrees apart: covering that
cone takes 6-11 rows for a 0.5 % loss, where the whole circle takes 32. Directions are
centred in equal sub-arcs of the cone, so the cone's edges are exact (a single direction,
e.g. a pod of EVSEs on one line pair, is one exact row); rows where every coefficient is
``<= 0`` cannot bind and are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.domain.units import Phase

Floats = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]
Ints = npt.NDArray[np.int64]

DEFAULT_LOSS = 0.005
"""Largest relative loss of a limit's radius to the polygon (0.5 %): 6 rows per slot for a
line behind a 208 V transformer, 11 for a delta-wye primary, 32 for a full circle. Measured
on the Caltech ACN network (docs/benchmarks/optimizer.md): 0.1-0.2 % below the exact optimum."""

PHASE_ANGLE_DEG: dict[Phase, float] = {Phase.L1: 0.0, Phase.L2: -120.0, Phase.L3: 120.0}
"""Angle of each line-to-neutral voltage (positive sequence L1 -> L2 -> L3), unity power factor."""


def line_angle_deg(a: Phase, b: Phase) -> float:
    """Angle of the line-to-line voltage ``V_a - V_b`` (L1-L2: 30, L2-L3: -90, L3-L1: 150 degrees)."""
    z = _unit(PHASE_ANGLE_DEG[a]) - _unit(PHASE_ANGLE_DEG[b])
    return round(math.degrees(math.atan2(z.imag, z.real)), 9)


def _unit(angle_deg: float) -> complex:
    r = math.radians(angle_deg)
    return complex(math.cos(r), math.sin(r))


def same_angle(a_deg: float, b_deg: float) -> bool:
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0) < 1e-6


def step_for(loss: float) -> float:
    """Largest spacing of directions (rad) whose polygon loses at most ``loss`` of the radius."""
    if not 0.0 < loss < 1.0:
        raise ValueError(f"current-limit loss must be in (0, 1), got {loss}")
    return 2.0 * math.acos(1.0 - loss)


def directions(coefs: Complex, loss: float) -> tuple[Floats, float]:
    """Directions (rad) of the polygon for one limit whose coefficients are ``coefs``, and
    their spacing (rad; 0 when the cone is one ray: its one row is then exact)."""
    nz = coefs[np.abs(coefs) > 0]
    if nz.size == 0:
        return np.zeros(0), 0.0
    step = step_for(loss)
    ang = np.sort(np.mod(np.angle(nz), 2.0 * math.pi))
    ang = ang[np.concatenate(([True], np.diff(ang) > 1e-12))]
    gaps = np.diff(np.concatenate((ang, [ang[0] + 2.0 * math.pi])))
    widest = int(np.argmax(gaps))
    if gaps[widest] > math.pi + 1e-9:
        lo = float(ang[(widest + 1) % ang.size])  # the cone runs from the end of the widest gap ...
        width = 2.0 * math.pi - float(gaps[widest])  # ... round to its start
        k = max(1, math.ceil(width / step - 1e-12))
        out: Floats = (lo + (np.arange(k) + 0.5) * (width / k)).astype(np.float64)
        return out, width / k
    k = max(3, math.ceil(2.0 * math.pi / step - 1e-12))
    full: Floats = (np.arange(k) * (2.0 * math.pi / k)).astype(np.float64)
    return full, 2.0 * math.pi / k


def polygon(coef: sp.csr_array, limit_a: Floats, loss: float) -> tuple[sp.csr_array, Floats, npt.NDArray[np.int64]]:
    """Rows ``R @ x <= hi`` (R real, (rows, n)) of every limit's polygon, and each row's limit.

    A limit's sides depend only on its coefficients and ``loss`` (:func:`sides`, memoised by
    value): the network does not change between re-plans, so a re-plan finds its limits'
    sides already computed, whatever objects they came in (ACN-Sim Caltech 500 replayed:
    ~60 limits per plan, about 5 ms of directions and projections before)."""
    n = int(coef.shape[1])
    csr = sp.csr_array(coef)
    csr.sort_indices()
    data = np.ascontiguousarray(csr.data, dtype=np.complex128)
    indptr = csr.indptr
    projs: list[Floats] = []
    limit_of: list[int] = []
    first_term: list[int] = []
    cos_half: list[float] = []
    for c in range(int(csr.shape[0])):
        lo, hi = int(indptr[c]), int(indptr[c + 1])
        if lo == hi:
            continue
        proj, half = sides(data[lo:hi].tobytes(), loss)
        if not proj.shape[0]:
            continue
        projs.append(proj)
        limit_of.append(c)
        first_term.append(lo)
        cos_half.append(half)
    if not projs:
        return sp.csr_array((0, n)), np.zeros(0), np.zeros(0, dtype=np.int64)
    k = np.array([q.shape[0] for q in projs], dtype=np.int64)  # sides per limit
    t = np.array([q.shape[1] for q in projs], dtype=np.int64)  # terms per limit
    owner = np.repeat(np.asarray(limit_of, dtype=np.int64), k)
    per_row = np.repeat(t, k)  # each row names every term of its limit
    row_of = np.repeat(np.arange(owner.size, dtype=np.int64), per_row)
    within = np.arange(row_of.size, dtype=np.int64) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    col_of = csr.indices[np.repeat(np.repeat(np.asarray(first_term, dtype=np.int64), k), per_row) + within]
    vals = np.concatenate([q.reshape(-1) for q in projs])
    his = np.repeat(limit_a[limit_of].astype(np.float64) * np.asarray(cos_half), k)
    R = sp.csr_array((vals, (row_of, col_of.astype(np.int64))), shape=(owner.size, n))
    return R, his, owner


@lru_cache(maxsize=4096)
def sides(coefs: bytes, loss: float) -> tuple[Floats, float]:
    """One limit's polygon: the projections ``Re(a_i exp(-j phi_k))`` (sides, terms) of its
    coefficients ``coefs`` (complex128 bytes) on the directions that can bind (a row with
    every coefficient ``<= 0`` cannot), and ``cos(spacing / 2)``, the factor of its limit.

    Memoised by value (the arrays returned are read-only): a key is the coefficients
    themselves, so a changed network is a new key, never a stale answer. 4,096 limits of a
    few dozen terms each: a few MB at most."""
    a = np.frombuffer(coefs, dtype=np.complex128)
    phi, spacing = directions(a, loss)
    proj = (a[None, :] * np.exp(-1j * phi)[:, None]).real  # (k, terms)
    proj = np.ascontiguousarray(proj[(proj > 1e-12).any(axis=1)])
    proj.setflags(write=False)
    return proj, math.cos(spacing / 2.0)


def magnitudes(coef: sp.csr_array, x: Floats) -> Floats:
    """``|coef @ x|`` (A): each limit's exact line current per slot, (limits, slots)."""
    if coef.shape[0] == 0:
        return np.zeros((0, x.shape[1]))
    # ``x`` is real: the real and imaginary parts of the sums are two real products, each
    # summed in the order of the complex one (so the same numbers), at a quarter of its
    # multiplications and without a complex copy of ``x``.
    csr = sp.csr_array(coef)
    xr = np.asarray(x, dtype=np.float64)
    sums = np.empty((int(csr.shape[0]), xr.shape[1]), dtype=np.complex128)
    sums.real = sp.csr_array((csr.data.real, csr.indices, csr.indptr), shape=csr.shape) @ xr
    sums.imag = sp.csr_array((csr.data.imag, csr.indices, csr.indptr), shape=csr.shape) @ xr
    out: Floats = np.abs(sums)
    return out


def room(z: Complex, a: Complex, limit_a: Floats) -> float:
    """Largest ``t >= 0`` with ``|z_c + t a_c| <= L_c`` for every limit ``c`` listed (kW).

    Solves ``|a|^2 t^2 + 2 Re(z conj a) t + |z|^2 - L^2 <= 0``; 0 when a limit is already full.
    """
    if a.size == 0:
        return math.inf
    aa = np.abs(a) ** 2
    b = (z * np.conj(a)).real
    c = np.abs(z) ** 2 - limit_a**2
    disc = np.maximum(b * b - aa * c, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(aa > 0, (-b + np.sqrt(disc)) / aa, np.inf)
    # Already over (beyond round-off): nothing may be added there.
    t = np.where(c > 1e-9 * np.maximum(limit_a**2, 1.0), 0.0, t)
    return max(float(t.min()), 0.0)


class SessionPhasors:
    """Per session: the limits it adds to and its complex A per kW in each (``[i]``: a pair of
    arrays), sliced from the transposed coefficients when first asked for: a repair asks for
    the few sessions it moves, not the hundreds planned."""

    __slots__ = ("_pairs", "by_session")

    def __init__(self, coef: sp.csr_array) -> None:
        self.by_session = sp.csr_array(coef.T)
        """(n, C): row ``i`` holds session ``i``'s limits and coefficients."""
        self._pairs: dict[int, tuple[Ints, Complex]] = {}

    def __len__(self) -> int:
        return int(self.by_session.shape[0])

    def __getitem__(self, i: int) -> tuple[Ints, Complex]:
        pair = self._pairs.get(i)
        if pair is None:
            m = self.by_session
            lo, hi = int(m.indptr[i]), int(m.indptr[i + 1])
            pair = self._pairs[i] = (m.indices[lo:hi].astype(np.int64), m.data[lo:hi].astype(np.complex128))
        return pair


def session_phasors(coef: sp.csr_array) -> SessionPhasors:
    """Per session: the limits it adds to and its complex A per kW in each (from ``coef`` (C, n))."""
    return SessionPhasors(coef)


@dataclass(frozen=True, slots=True)
class Kinds:
    """Sessions with the same limits and coefficients have the same room in any state of the
    lines: :class:`LineState` computes it once per kind."""

    of_session: list[int]
    by_limit: dict[int, list[int]]
    """Per limit: the kinds in it (their rooms change when its sum does)."""


def phasor_kinds(per_session: SessionPhasors) -> Kinds:
    """Kinds numbered in order of first appearance (:func:`equal_rows` over ``by_session``)."""
    m = per_session.by_session
    n = int(m.shape[0])
    of_session, first = equal_rows(m.indptr, m.indices, m.data, np.arange(n, dtype=np.int64))
    by_limit: dict[int, list[int]] = {}
    for kind, i in enumerate(first.tolist()):
        for c in m.indices[m.indptr[i] : m.indptr[i + 1]].tolist():
            by_limit.setdefault(c, []).append(kind)
    return Kinds(of_session.tolist(), by_limit)


def equal_rows(indptr: Ints, indices: Ints, data: Complex, rows: Ints) -> tuple[Ints, Ints]:
    """Label the listed rows of a compressed sparse matrix (``indptr``, ``indices``, ``data``; or
    the columns of a CSC one): rows whose stored indices and values are equal bit for bit share a
    label, labels numbered by first appearance in ``rows``; and the first row of each label.

    One ``np.unique`` over a key per row (its count, its indices, the bits of its values,
    zero-padded) instead of a bytes key per row in Python."""
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = indptr[rows].astype(np.int64)
    nnz = indptr[rows + 1].astype(np.int64) - lo
    w = int(nnz.max())
    keys = np.zeros((rows.size, 1 + 3 * w), dtype=np.uint64)
    keys[:, 0] = nnz
    if w:
        which = np.repeat(np.arange(rows.size, dtype=np.int64), nnz)
        pos = np.arange(which.size, dtype=np.int64) - np.repeat(np.cumsum(nnz) - nnz, nnz)
        at = lo[which] + pos
        values = np.ascontiguousarray(data, dtype=np.complex128)[at]
        keys[which, 1 + pos] = indices[at].astype(np.uint64)
        keys[which, 1 + w + pos] = values.real.copy().view(np.uint64)
        keys[which, 1 + 2 * w + pos] = values.imag.copy().view(np.uint64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # labels by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels: Ints = rank[inverse.reshape(-1)].astype(np.int64)
    firsts: Ints = rows[first[order]].astype(np.int64)
    return labels, firsts


class LineState:
    """One slot's phasor sums, updated as sessions' power changes (exact headroom for the
    greedy heuristics and the repairs).

    With ``kinds`` (:func:`phasor_kinds`), a room is computed once per kind of session until
    the sums change: after the LP the lines are full and a repair asks hundreds of sessions
    of a few kinds for their room. A take forgets the rooms of the kinds in the limits it
    changed (ACN-Sim Caltech 500 replayed: 437 room computations per re-plan -> 132).
    """

    __slots__ = ("_rooms", "kinds", "limit_a", "per_session", "z")

    def __init__(
        self,
        coef: sp.csr_array,
        limit_a: Floats,
        col_kw: Floats,
        per_session: SessionPhasors,
        kinds: Kinds | None = None,
    ) -> None:
        self.z: Complex = coef @ col_kw.astype(np.complex128)
        self.limit_a = limit_a
        self.per_session = per_session
        self.kinds = kinds
        self._rooms: dict[int, float] = {}

    def room(self, i: int) -> float:
        """Most kW session ``i`` may add before some limit it is in is full (inf: in none).

        :func:`room` for one session, in scalar arithmetic: a session is in a handful of
        limits, where numpy's per-call overhead was most of the repairs' time.
        """
        if self.kinds is None:
            return self._room(i)
        kind = self.kinds.of_session[i]
        known = self._rooms.get(kind)
        if known is None:
            known = self._rooms[kind] = self._room(i)
        return known

    def _room(self, i: int) -> float:
        idx, a = self.per_session[i]
        best = math.inf
        z, limit_a = self.z, self.limit_a
        for c, ac in zip(idx.tolist(), a.tolist(), strict=True):
            zc = complex(z.item(c))  # item(): a Python number without a numpy scalar in between
            lim = float(limit_a.item(c))
            cc = zc.real * zc.real + zc.imag * zc.imag - lim * lim
            if cc > 1e-9 * max(lim * lim, 1.0):
                return 0.0  # already over (beyond round-off): nothing may be added
            aa = ac.real * ac.real + ac.imag * ac.imag
            if aa > 0:
                b = zc.real * ac.real + zc.imag * ac.imag
                best = min(best, (-b + math.sqrt(max(b * b - aa * cc, 0.0))) / aa)
        return max(best, 0.0)

    def take(self, i: int, kw: float) -> None:
        idx, a = self.per_session[i]
        if idx.size:
            self.z[idx] += kw * a
            if self.kinds is not None and self._rooms:
                for c in idx.tolist():
                    for kind in self.kinds.by_limit[c]:
                        self._rooms.pop(kind, None)

    def limits_of(self, i: int) -> npt.NDArray[np.int64]:
        return self.per_session[i][0]
