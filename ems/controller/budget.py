"""The safety invariant, checked: every node of the circuit tree and every phase, at every instant (pure).

``Budget`` holds, on one grid of instants (every instant at which any EVSE's bound or any
capacity may change, from now on), the sum of the EVSEs' bounds per node and grid phase,
and the limits in force. ``fits`` says whether replacing one EVSE's bound by another keeps
every node it sits under within its limits wherever the new bound is higher; ``commit``
books it. Between two instants of the grid nothing changes, so checking the grid is
checking every instant.

Limits per node: a power limit in W per slot (the lowest bound in force during the slot,
as the optimizer sees it; past the horizon the last slot's), and per-phase limits in A.
An EVSE loads ``current_a`` on each of the first ``phases`` grid phases of its
``phase_map`` and ``current_a * voltage_v * phases`` W.

Line currents as phasors (``Limits.wiring``: a site with line-to-line EVSEs or transformers):
the phase limits of the nodes above them bound phasor sums, not per-phase sums. Those nodes'
per-phase rows are cleared and each line is a row of its own (``Limits.line_limits_a``, ids as
the optimizer's ``CurrentLimit``), booked per term direction and checked at its exact worst
case over every draw within the bounds (``ems.controller.lines``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from ems.controller.belief import Bound
from ems.controller.lines import DIRECTIONS, Term, Wiring, worst_a
from ems.domain.units import ALL_PHASES, Phase

Array = npt.NDArray[np.float64]
SITE = "__site__"
TOLERANCE_W = 1.0
"""Profiles are in 0.1 A steps and converted at 230 V: comparisons allow 1 W / 0.01 A of rounding."""
TOLERANCE_A = 0.01


@dataclass(frozen=True, slots=True)
class NodeLimits:
    id: str
    parent: str | None
    """``None`` for the site; a circuit directly under the site has parent ``SITE``."""
    capacity_w: tuple[float, ...] | None
    """Per slot from ``Limits.start``; ``None``: no power limit."""
    phase_limits_a: Mapping[Phase, float]


@dataclass(frozen=True, slots=True)
class Limits:
    start: datetime
    slot_s: int
    nodes: tuple[NodeLimits, ...]
    wiring: Wiring | None = None
    line_limits_a: Mapping[str, float] = field(default_factory=dict)
    """Line rows (``<node>:<line>``, ``<circuit>:primary:<line>``) -> A, checked as phasors."""

    def capacity_w(self, node: NodeLimits, t: datetime) -> float:
        if node.capacity_w is None or not node.capacity_w:
            return math.inf
        i = int((t - self.start).total_seconds() // self.slot_s)
        return node.capacity_w[min(max(i, 0), len(node.capacity_w) - 1)]

    def breakpoints(self, since: datetime) -> set[datetime]:
        n = max((len(n.capacity_w or ()) for n in self.nodes), default=0)
        return {t for t in (self.start + timedelta(seconds=self.slot_s * i) for i in range(1, n)) if t > since} | {
            since
        }


@dataclass(frozen=True, slots=True)
class EvsePlace:
    """Where an EVSE sits: its circuit (``None``: under the site), phase wiring and voltage."""

    circuit: str | None
    phase_map: tuple[Phase, ...]
    voltage_v: float
    lines: tuple[Phase, Phase] | None = None
    """Set for a line-to-line EVSE (``phase_map`` is then its first line)."""


def _at_grid(
    bound: Bound, place: EvsePlace, grid: Sequence[datetime], grid_s: Array | None
) -> tuple[Array, npt.NDArray[np.int64]]:
    base = grid[0] if grid else bound.times[0]
    if grid_s is None:
        grid_s = np.array([(t - base).total_seconds() for t in grid])
    times_s = np.array([(t - base).total_seconds() for t in bound.times])
    idx = np.clip(np.searchsorted(times_s, grid_s, side="right") - 1, 0, len(bound.times) - 1)
    amps = np.asarray(bound.current_a, dtype=np.float64)[idx]
    phases = np.minimum(np.asarray(bound.phases)[idx], len(place.phase_map))
    return amps, phases


def load_matrix(bound: Bound, place: EvsePlace, grid: Sequence[datetime], grid_s: Array | None = None) -> Array:
    """(len(grid), 4): A on grid L1, L2, L3 and W, of ``bound`` at each instant of ``grid``."""
    return _load(place, *_at_grid(bound, place, grid, grid_s))


def _load(place: EvsePlace, amps: Array, phases: npt.NDArray[np.int64]) -> Array:
    out = np.zeros((len(amps), 4))
    for k, p in enumerate(place.phase_map):
        out[:, ALL_PHASES.index(p)] = np.where(phases > k, amps, 0.0)
    out[:, 3] = amps * place.voltage_v * phases
    return out


class Budget:
    def __init__(self, limits: Limits, grid: Iterable[datetime]) -> None:
        self.grid = sorted(set(grid))
        self.limits = limits
        self._nodes = {n.id: n for n in limits.nodes}
        self.cap = {
            n.id: np.array(
                [[n.phase_limits_a.get(p, math.inf) for p in ALL_PHASES] + [limits.capacity_w(n, t)] for t in self.grid]
            )
            for n in limits.nodes
        }
        self.tol = np.array([TOLERANCE_A] * 3 + [TOLERANCE_W])
        self.load = {n.id: np.zeros((len(self.grid), 4)) for n in limits.nodes}
        base = self.grid[0] if self.grid else limits.start
        self._grid_s = np.array([(t - base).total_seconds() for t in self.grid])
        self._booked: dict[object, Array] = {}
        self.wiring = limits.wiring
        self.line_cap = {r: float(a) for r, a in limits.line_limits_a.items()}
        self._row = {r: i for i, r in enumerate(self.line_cap)}
        self._cap_rows = np.array(list(self.line_cap.values()))
        self._lload = np.zeros((len(self._row), len(self.grid), DIRECTIONS))
        self.line_load = {r: self._lload[i] for r, i in self._row.items()}
        """Per line row, (grid, 12): the bounds' weights per term direction (views of one array)."""
        self._line_booked: dict[object, tuple[npt.NDArray[np.int64], Array]] = {}
        self._place_rows: dict[EvsePlace, tuple[npt.NDArray[np.int64], Array]] = {}

    def chain(self, place: EvsePlace) -> list[str]:
        """The EVSE's circuit and every node above it, up to the site."""
        out: list[str] = []
        node: str | None = place.circuit if place.circuit in self._nodes else SITE
        while node is not None and node in self._nodes and node not in out:
            out.append(node)
            node = self._nodes[node].parent
        return out

    def line_rows(self, place: EvsePlace) -> dict[str, tuple[Term, ...]]:
        """The line rows the EVSE loads, with its terms on each."""
        if self.wiring is None or not self.line_cap:
            return {}
        terms = self.wiring.terms(place.circuit, place.phase_map, place.lines)
        return {r: t for r, t in terms.items() if r in self.line_cap}

    def constraints(self, place: EvsePlace) -> list[str]:
        """Every node and line row the EVSE loads (``chain`` and ``line_rows``)."""
        return [*self.chain(place), *self.line_rows(place)]

    def _rows_of(self, place: EvsePlace) -> tuple[npt.NDArray[np.int64], Array]:
        """The rows' indices and (rows, 12, 3): A per direction per A on each of the EVSE's own phases."""
        found = self._place_rows.get(place)
        if found is None:
            rows = self.line_rows(place)
            m = np.zeros((len(rows), DIRECTIONS, 3))
            for j, terms in enumerate(rows.values()):
                for k, d, weight in terms:
                    m[j, d, min(k, 2)] += weight
            found = (np.array([self._row[r] for r in rows], dtype=np.int64), m)
            self._place_rows[place] = found
        return found

    def _lines(
        self, place: EvsePlace, amps: Array, phases: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], Array]:
        idx, m = self._rows_of(place)
        if not idx.size:
            return idx, np.zeros((0, len(self.grid), DIRECTIONS))
        drawn = np.where(phases[:, None] > np.arange(3)[None, :], amps[:, None], 0.0)  # (grid, own phase)
        return idx, np.einsum("rdk,tk->rtd", m, drawn)

    def _line_delta(self, key: object, idx: npt.NDArray[np.int64], lines: Array) -> tuple[npt.NDArray[np.int64], Array]:
        old = self._line_booked.get(key)
        if old is None or not old[0].size:
            return idx, lines
        if np.array_equal(old[0], idx):
            return idx, lines - old[1]
        rows = np.union1d(idx, old[0])
        delta = np.zeros((len(rows), len(self.grid), DIRECTIONS))
        delta[np.searchsorted(rows, idx)] += lines
        delta[np.searchsorted(rows, old[0])] -= old[1]
        return rows, delta

    def book(self, key: object, bound: Bound, place: EvsePlace) -> None:
        at = _at_grid(bound, place, self.grid, self._grid_s)
        m = _load(place, *at)
        old = self._booked.get(key)
        for node in self.chain(place):
            self.load[node] += m if old is None else m - old
        self._booked[key] = m
        if self._row:
            new = self._lines(place, *at)
            idx, delta = self._line_delta(key, *new)
            if idx.size:
                self._lload[idx] += delta
            self._line_booked[key] = new

    def fits(self, key: object, bound: Bound, place: EvsePlace) -> bool:
        """Would booking ``bound`` for ``key`` keep every node and line within its limits wherever it adds load?"""
        at = _at_grid(bound, place, self.grid, self._grid_s)
        m = _load(place, *at)
        old = self._booked.get(key)
        delta = m if old is None else m - old
        rising = delta > 1e-9
        if rising.any():
            for node in self.chain(place):
                after = self.load[node] + delta
                if (rising & (after > self.cap[node] + self.tol)).any():
                    return False
        if not self._row:
            return True
        idx, d = self._line_delta(key, *self._lines(place, *at))
        up = (d > 1e-9).any(axis=-1)  # (rows, grid)
        if not up.any():
            return True
        # The worst case is monotone in every weight: only instants where some weight rises can newly break.
        worst = worst_a(self._lload[idx] + d)
        return not (up & (worst > self._cap_rows[idx][:, None] + TOLERANCE_A)).any()

    def line_worst_a(self, row: str) -> Array:
        """The row's exact worst line current at each instant of the grid (A)."""
        return worst_a(self.line_load[row])

    def violations(self) -> list[str]:
        """Every node, phase and instant over its limit now (for tests and logs)."""
        out: list[str] = []
        names = [*(str(p) for p in ALL_PHASES), "W"]
        for node, load in self.load.items():
            over = load > self.cap[node] + self.tol
            for k, j in zip(*np.nonzero(over), strict=True):
                out.append(
                    f"{node} {names[j]} at {self.grid[k].isoformat()}: {load[k, j]:.2f} > {self.cap[node][k, j]:.2f}"
                )
        for row, cap in self.line_cap.items():
            worst = self.line_worst_a(row)
            for k in np.nonzero(worst > cap + TOLERANCE_A)[0]:
                out.append(f"{row} at {self.grid[k].isoformat()}: {worst[k]:.2f} A (line, exact) > {cap:.2f}")
        return out
