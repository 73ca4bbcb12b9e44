"""Pure smart-charging optimizer: site snapshot in, schedule out (LP on HiGHS, with fallbacks).

Start with :func:`optimize` (one plan) or :class:`RollingPlanner` (re-plans, warm-started);
docs/optimizer.md has the formulation, weights, statuses and formats.
"""

from ems.optimizer.feasibility import check, is_feasible
from ems.optimizer.matrices import Weights
from ems.optimizer.mpc import RollingPlanner, replay, roll
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm, Schedule, SessionPlan, SolveStatus, Violation
from ems.optimizer.snapshot import (
    SITE_NODE_ID,
    CircuitLimits,
    EvseLimits,
    SessionDemand,
    SiteLimits,
    Snapshot,
)

__all__ = [
    "SITE_NODE_ID",
    "Algorithm",
    "CircuitLimits",
    "EvseLimits",
    "Options",
    "RollingPlanner",
    "Schedule",
    "SessionDemand",
    "SessionPlan",
    "SiteLimits",
    "Snapshot",
    "SolveStatus",
    "Violation",
    "Weights",
    "check",
    "is_feasible",
    "optimize",
    "replay",
    "roll",
]
