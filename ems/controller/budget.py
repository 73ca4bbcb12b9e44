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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from ems.controller.belief import Bound
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


def load_matrix(bound: Bound, place: EvsePlace, grid: Sequence[datetime], grid_s: Array | None = None) -> Array:
    """(len(grid), 4): A on grid L1, L2, L3 and W, of ``bound`` at each instant of ``grid``."""
    base = grid[0] if grid else bound.times[0]
    if grid_s is None:
        grid_s = np.array([(t - base).total_seconds() for t in grid])
    times_s = np.array([(t - base).total_seconds() for t in bound.times])
    idx = np.clip(np.searchsorted(times_s, grid_s, side="right") - 1, 0, len(bound.times) - 1)
    amps = np.asarray(bound.current_a)[idx]
    phases = np.minimum(np.asarray(bound.phases)[idx], len(place.phase_map))
    out = np.zeros((len(grid), 4))
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

    def chain(self, place: EvsePlace) -> list[str]:
        """The EVSE's circuit and every node above it, up to the site."""
        out: list[str] = []
        node: str | None = place.circuit if place.circuit in self._nodes else SITE
        while node is not None and node in self._nodes and node not in out:
            out.append(node)
            node = self._nodes[node].parent
        return out

    def book(self, key: object, bound: Bound, place: EvsePlace) -> None:
        m = load_matrix(bound, place, self.grid, self._grid_s)
        old = self._booked.get(key)
        for node in self.chain(place):
            self.load[node] += m if old is None else m - old
        self._booked[key] = m

    def fits(self, key: object, bound: Bound, place: EvsePlace) -> bool:
        """Would booking ``bound`` for ``key`` keep every node within its limits wherever it adds load?"""
        m = load_matrix(bound, place, self.grid, self._grid_s)
        old = self._booked.get(key)
        delta = m if old is None else m - old
        rising = delta > 1e-9
        if not rising.any():
            return True
        for node in self.chain(place):
            after = self.load[node] + delta
            if (rising & (after > self.cap[node] + self.tol)).any():
                return False
        return True

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
        return out
