"""The same LP through PuLP, for solvers HiGHS is not: CBC, GLPK, commercial ones when installed.

Built row by row from the very matrices :mod:`ems.optimizer.matrices` makes, so both paths
solve one model (the scenario tests check they agree). PuLP builds models 170-270x slower
than numpy (DESIGN.md), so this path is for what-if runs and solver comparisons, not for
the controller's re-plans.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pulp

from ems.errors import NotAvailable
from ems.optimizer.lp import LpSolution
from ems.optimizer.matrices import LpMatrices
from ems.optimizer.schedule import SolveStatus

SOLVERS = {
    "cbc": "PULP_CBC_CMD",
    "glpk": "GLPK_CMD",
    "highs": "HiGHS",
    "highs-cmd": "HiGHS_CMD",
    "cplex": "CPLEX_CMD",
    "gurobi": "GUROBI_CMD",
    "scip": "SCIP_CMD",
    "copt": "COPT_CMD",
    "mosek": "MOSEK",
    "xpress": "XPRESS",
}
"""``--solver pulp-<key>`` -> PuLP solver class name."""


def available() -> list[str]:
    """Keys of :data:`SOLVERS` that PuLP can run on this machine."""
    found = set(pulp.listSolvers(onlyAvailable=True))
    return [k for k, name in SOLVERS.items() if name in found]


def to_pulp(m: LpMatrices) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """``m`` as a PuLP problem (minimize ``cost @ v`` subject to the rows and bounds)."""
    prob = pulp.LpProblem("ems_schedule", pulp.LpMinimize)
    cols = [
        prob.add_variable(f"v{j}", lowBound=float(lo), upBound=None if math.isinf(hi) else float(hi))
        for j, (lo, hi) in enumerate(zip(m.col_lo.tolist(), m.col_hi.tolist(), strict=True))
    ]
    prob += pulp.lpSum(c * cols[j] for j, c in enumerate(m.cost.tolist()) if c != 0.0)
    rows = m.A.tocsr()
    for r in range(rows.shape[0]):
        lo, hi = float(m.row_lo[r]), float(m.row_hi[r])
        start, end = rows.indptr[r], rows.indptr[r + 1]
        expr = pulp.lpSum(
            v * cols[j] for j, v in zip(rows.indices[start:end].tolist(), rows.data[start:end].tolist(), strict=True)
        )
        if lo == hi:
            prob += expr == hi, f"r{r}"
            continue
        if not math.isinf(hi):
            prob += expr <= hi, f"r{r}_hi"
        if not math.isinf(lo):
            prob += expr >= lo, f"r{r}_lo"
    return prob, cols


def solve(m: LpMatrices, solver: str, *, time_limit_s: float | None = None) -> LpSolution:
    """Solve ``m`` with PuLP's ``solver`` (a key of :data:`SOLVERS`); status as in lp.py."""
    name = SOLVERS.get(solver)
    if name is None or solver not in available():
        raise NotAvailable(f"PuLP solver {solver!r} is not available here (available: {', '.join(available())})")
    prob, cols = to_pulp(m)
    started = time.perf_counter()
    kwargs: dict[str, object] = {"msg": False}
    if time_limit_s is not None:
        kwargs["timeLimit"] = time_limit_s
    with warnings.catch_warnings():
        # PuLP 3.x warns that its bundled CBC (PULP_CBC_CMD) moves to an extra in 4.0; it
        # is the CBC installed here, so the notice is for whoever upgrades PuLP, not a fault.
        warnings.simplefilter("ignore", DeprecationWarning)
        engine = pulp.getSolver(name, **kwargs)
        prob.solve(engine)
    solve_s = time.perf_counter() - started
    status_name = pulp.LpStatus[prob.status]
    values = np.array([v.value() if v.value() is not None else np.nan for v in cols], dtype=np.float64)
    has_values = not np.isnan(values).any()
    sol_status = pulp.LpSolution[prob.sol_status] if hasattr(prob, "sol_status") else ""
    if prob.status == pulp.LpStatusOptimal and sol_status != "Optimal Solution Found" and time_limit_s is not None:
        # PuLP reports CBC's time-limited incumbent as "Optimal"; sol_status tells the truth.
        status = SolveStatus.FEASIBLE
    elif prob.status == pulp.LpStatusOptimal:
        status = SolveStatus.OPTIMAL
    elif has_values and prob.status == pulp.LpStatusNotSolved:
        status = SolveStatus.FEASIBLE
    else:
        status = SolveStatus.FALLBACK if prob.status == pulp.LpStatusNotSolved else SolveStatus.ERROR
    objective = float(pulp.value(prob.objective)) if has_values else float("nan")
    return LpSolution(
        status, values if has_values else None, objective, solve_s, 0, f"pulp-{solver}", f"{status_name}/{sol_status}"
    )
