"""The optimizer's output: power per session per slot, with an honest status and reasons.

``power_w[i, t]`` is the average power planned for session ``i`` in slot ``t`` (W); on each
grid phase the session loads, it draws ``current_a[i, t] = power_w / (voltage_v * phases)``.
``energy_wh[i] = sum_t power_w[i, t] * slot_s / 3600`` exactly, and
``unmet_wh[i] = need - energy_wh[i]`` where ``need = max(energy_wh - delivered_wh, 0)`` of
the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np

from ems.domain.units import Phase
from ems.optimizer.problem import Floats


class SolveStatus(StrEnum):
    OPTIMAL = "OPTIMAL"
    """The LP solved to optimality (then repaired for minimum currents, see repair.py)."""
    FEASIBLE = "FEASIBLE"
    """Respects every limit but is not proven optimal: a time-limited incumbent, or a heuristic."""
    FALLBACK = "FALLBACK"
    """The LP gave no usable answer in time; a tree-respecting heuristic (EDF) planned instead."""
    ERROR = "ERROR"
    """The solver failed; the schedule is the heuristic fallback, ``stats['error']`` says why."""
    INFEASIBLE = "INFEASIBLE"
    """The schedule breaks a limit (only the ``uncontrolled`` baseline does); see violations."""


class Algorithm(StrEnum):
    LP = "lp"
    EDF = "edf"
    LLF = "llf"
    ROUND_ROBIN = "round-robin"
    UNCONTROLLED = "uncontrolled"


@dataclass(frozen=True, slots=True)
class Violation:
    """A limit that does not hold, or a soft goal that cannot, named and located.

    ``amount`` is the worst excess in ``unit`` over the listed ``slots``.
    """

    kind: str
    message: str
    node: str | None = None
    session: str | None = None
    phase: Phase | None = None
    slots: tuple[int, ...] = ()
    amount: float = 0.0
    unit: str = ""


@dataclass(frozen=True, slots=True)
class SessionPlan:
    id: str
    power_w: tuple[float, ...]
    current_a: tuple[float, ...]
    """Per slot, A on each of ``phases``."""
    phases: tuple[Phase, ...]
    energy_wh: float
    unmet_wh: float
    limited_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Schedule:
    status: SolveStatus
    algorithm: Algorithm
    solver: str
    start: datetime
    slot_s: int
    session_ids: tuple[str, ...]
    power_w: Floats
    """(n, slots) W; never negative."""
    current_a: Floats
    """(n, slots) A per loaded phase."""
    session_phases: tuple[tuple[Phase, ...], ...]
    energy_wh: Floats
    unmet_wh: Floats
    limited_by: tuple[tuple[str, ...], ...]
    site_power_w: Floats
    """(slots,) sum over sessions (EV load only; base load and PV excluded)."""
    violations: tuple[Violation, ...] = ()
    objective: Mapping[str, float] = field(default_factory=dict)
    solve_s: float = 0.0
    stats: Mapping[str, float | int | str] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        return int(self.site_power_w.shape[0])

    @property
    def total_energy_wh(self) -> float:
        return float(self.energy_wh.sum())

    def fully_served(self, tol_wh: float = 1.0) -> int:
        """Sessions whose request is met to within ``tol_wh`` (1 Wh: meter resolution)."""
        return int(np.count_nonzero(self.unmet_wh <= tol_wh))

    def session(self, session_id: str) -> SessionPlan:
        i = self.session_ids.index(session_id)
        return self.plan(i)

    def plan(self, i: int) -> SessionPlan:
        return SessionPlan(
            id=self.session_ids[i],
            power_w=tuple(float(v) for v in self.power_w[i]),
            current_a=tuple(float(v) for v in self.current_a[i]),
            phases=self.session_phases[i],
            energy_wh=float(self.energy_wh[i]),
            unmet_wh=float(self.unmet_wh[i]),
            limited_by=self.limited_by[i],
        )
