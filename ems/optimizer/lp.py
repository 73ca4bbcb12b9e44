"""Stage 3: solve the LP matrices with HiGHS (highspy), honestly.

The CSC matrix goes to HiGHS as arrays (no modelling layer). Status mapping:

- HiGHS ``Optimal`` -> ``OPTIMAL``;
- time or iteration limit with a primal solution -> ``FEASIBLE`` (the caller scales the
  incumbent into the limits, see :func:`ems.optimizer.repair.scale_into_limits`);
- time limit without one -> ``FALLBACK`` (the caller plans with a heuristic);
- anything else -> ``ERROR`` (same fallback; the model status is reported).

Lazy rows: circuit power rows and phase rows rarely bind, so :func:`solve` starts without
them and adds the violated (and nearly full) ones, re-solving warm, until none is violated.

Warm start (:class:`WarmStart`): a re-plan starts HiGHS from the last plan's basis mapped onto
the new LP (carry.py) as an alien basis, or, without one, from the last plan's values.

Method: dual simplex below :data:`IPM_ABOVE_COLS` columns, interior point (with crossover)
above: on these LPs IPM is 4-20x faster past ~100k variables (docs/benchmarks/optimizer.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import StrEnum

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ems.optimizer.matrices import LpMatrices
from ems.optimizer.problem import Floats, Ints
from ems.optimizer.schedule import SolveStatus

LAZY_TOL = 1e-7
"""Relative violation of a left-out row that makes it join the LP (HiGHS's feasibility tolerance)."""
LAZY_NEAR = 0.02
"""Left-out rows within 2 % of their limit join too, so a second round is rarely needed."""
SEED_FROM_WARM = True
"""With a warm start, the lazy rows the start fills (within ``LAZY_NEAR``) are in from the first
solve. A/B in one process on the 1,000 x 96 replayed day (seed 1): p95 148 / 155 ms with it,
162 / 170 without, means equal; on Caltech 500 (ACN-Sim) re-plans took 2.9 solver runs instead of 4.4."""
LAZY_ALL_SHARE = 0.1
"""With a warm start that fills this share of the lazy rows or more, every row is in from the
first solve: finding them round by round (each round a warm re-solve) then costs more. ACN-Sim
Caltech 500 (lines and pods bind all day): the start fills 10-70 % of them (median 16 %); the
replayed 1,000 x 96 workplace day (circuits rarely bind): at most 2 % (median 0.3 %), unchanged."""
LAZY_ALL_MIN_ROWS = 5_000
"""... and only in an LP with this many lazy rows or more, where a round is expensive. A/B over
recorded ACN-Sim snapshots (CPU per re-plan, two passes): Caltech 500 flat (lazy rows median
3,300, max 8,300) gated 61 / 81 ms, ungated 70 / 92, never 72 / 99; Caltech 100 dip (median
1,300, max 7,500) gated 63 / 70, ungated 74 / 66, never 59 / 62. Ungated, the single-phase
instances (a few dozen lazy rows) ended 4-11 kWh lower in 3 of 3 runs (another vertex each plan)."""
PRIMAL, DUAL = 4, 1
"""HiGHS ``simplex_strategy`` values."""
PRIMAL_ROWS_PER_COL = 0.3
"""From a carried basis, primal simplex when the LP holds this many rows per column or more,
else dual. The last plan's optimal basis on the new LP is mostly primal feasible (the same
sessions, one slot on) and not dual feasible (the tie-breaking weights move with the horizon):
primal takes fewer iterations, but each costs more the more columns per row it prices. Replayed
ACN-Sim Caltech 500 flat (0.2-0.7 rows per column): primal 452 iterations and 24 ms per re-plan,
dual 1,249 and 42 ms; single-phase 500 (0.1-0.2): primal 15.5 ms, dual 12.7; the 1,000 x 96
workplace day (0.07-0.25): primal p95 150 ms, dual 95 (docs/benchmarks/optimizer.md, fourth
round). From a primal point without a basis primal was slower (third round)."""
WARM_MIN_ITERATIONS = 5_000
"""Iteration budget of a warm-started solve before it restarts cold (at least; half the columns above)."""
IPM_ABOVE_COLS = 100_000
"""Measured crossover point of simplex vs IPM run time on workplace-day LPs (DESIGN.md)."""


Statuses = npt.NDArray[np.int8]
AT_LOWER, BASIC, AT_UPPER, ABSENT = 0, 1, 2, 3
"""Basis statuses (HiGHS's codes): nonbasic at the lower bound, basic, nonbasic at the upper;
and a lazy row the solver did not hold (slack: basic when added)."""


class LpMethod(StrEnum):
    AUTO = "auto"
    SIMPLEX = "simplex"
    IPM = "ipm"


@dataclass(frozen=True, slots=True)
class WarmStart:
    """Column values from a previous plan, re-indexed onto the new LP (see mpc.py), and
    optionally the previous plan's basis mapped onto it (carry.py).

    Without a basis HiGHS derives one from the values (a crossover); with one it starts the
    simplex from it (an *alien* basis: HiGHS completes it when it is singular or has the
    wrong number of basic variables).
    """

    col_value: Floats
    col_status: Statuses | None = None
    """Per column: its status in the carried basis (:data:`AT_LOWER`, :data:`BASIC`, :data:`AT_UPPER`)."""
    row_status: Statuses | None = None
    """Per row of the LP: the status of its activity (``BASIC``: the row is not held at a bound)."""


@dataclass(frozen=True, slots=True)
class LpSolution:
    status: SolveStatus
    values: Floats | None
    """All column values, or ``None`` when HiGHS has no primal solution."""
    objective: float
    solve_s: float
    iterations: int
    method: str
    model_status: str
    highs: highspy.Highs | None = None
    """The solver instance, for warm re-solves (:func:`resolve`)."""
    lazy_rounds: int = 0
    """Times left-out rows were added and the LP re-solved."""
    rows: Ints | None = None
    """The LP's rows the solver holds, in its order (lazy rows left out are not in it)."""


def choose_method(m: LpMatrices, method: LpMethod) -> str:
    if method is LpMethod.AUTO:
        return "ipm" if m.shape[1] > IPM_ABOVE_COLS else "simplex"
    return method.value


def make_highs(
    m: LpMatrices,
    *,
    time_limit_s: float | None = None,
    method: str = "simplex",
    rows: npt.NDArray[np.bool_] | None = None,
    by_row: sp.csr_array | None = None,
) -> highspy.Highs:
    """A silent HiGHS instance holding the LP, or only the ``rows`` selected (benchmarks
    use it to time the bare solve of the full LP; ``by_row``: ``m.A`` as CSR, when the caller has it)."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", method)
    # IPM keeps HiGHS's crossover on: the min-current repair needs a vertex (few sessions
    # strictly between 0 and their max per slot). Without crossover IPM is 2-3x faster but
    # its interior answer lost 7 % of the energy in the repair (1,000 x 96, measured).
    # One thread: the controller runs several solves side by side and the machine is shared.
    h.setOptionValue("threads", 1)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    inf = highspy.kHighsInf
    A = m.A if rows is None else sp.csc_array((m.A.tocsr() if by_row is None else by_row)[np.flatnonzero(rows)])
    row_lo = m.row_lo if rows is None else m.row_lo[rows]
    row_hi = m.row_hi if rows is None else m.row_hi[rows]
    n_rows, n_cols = int(A.shape[0]), int(A.shape[1])
    h.passModel(
        n_cols,
        n_rows,
        int(A.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        m.cost,
        m.col_lo,
        np.minimum(m.col_hi, inf),
        np.maximum(row_lo, -inf),
        np.minimum(row_hi, inf),
        A.indptr.astype(np.int32),
        A.indices.astype(np.int32),
        A.data.astype(np.float64),
        np.zeros(n_cols, dtype=np.int32),  # integrality: all continuous (a pure LP)
    )
    return h


def solve(
    m: LpMatrices,
    *,
    time_limit_s: float | None = None,
    method: LpMethod = LpMethod.AUTO,
    warm: WarmStart | None = None,
    lazy: bool = True,
) -> LpSolution:
    """Solve ``m``; never raises for solver trouble (see the status mapping above).

    With ``lazy``, HiGHS starts without the rows that rarely bind (``m.lazy``: circuit and
    phase limits) and rows found violated are added and re-solved from the current basis
    (dual simplex) until none is: the same optimum, measured 2-3x faster on workplace days.
    """
    chosen = choose_method(m, method)
    started = time.perf_counter()
    included = ~m.lazy if lazy else np.ones(m.lazy.size, dtype=bool)
    by_row = m.A.tocsr() if lazy and m.lazy.any() else None
    if by_row is not None and warm is not None and SEED_FROM_WARM:
        # The rows the previous plan filled will most likely bind again: start with them
        # rather than find them one round at a time.
        seeded = m.lazy & _near_full(by_row @ warm.col_value, m.row_hi)
        # When many of them are full, many more will be: finding them round by round costs
        # more than starting with all of them (LAZY_ALL_SHARE).
        many = m.lazy.sum() >= LAZY_ALL_MIN_ROWS and seeded.sum() >= LAZY_ALL_SHARE * m.lazy.sum()
        included |= m.lazy if many else seeded
    if by_row is not None and warm is not None and warm.row_status is not None:
        # And the rows the last plan ended with: most of them were needed then.
        included |= m.lazy & (warm.row_status != ABSENT)
    h = make_highs(m, time_limit_s=time_limit_s, method=chosen, rows=included, by_row=by_row)
    if warm is not None and chosen == "simplex":
        if warm.col_status is not None and warm.row_status is not None:
            h.setBasis(_basis(m, warm.col_status, warm.row_status, included))
            held = int(np.count_nonzero(included))
            h.setOptionValue("simplex_strategy", PRIMAL if held >= PRIMAL_ROWS_PER_COL * m.shape[1] else DUAL)
        else:
            start = highspy.HighsSolution()
            start.col_value = list(warm.col_value)
            start.value_valid = True
            h.setSolution(start)
        # A warm start should save work; when it does not (a start far from the new optimum),
        # cap it and solve cold rather than pay many times a cold solve.
        h.setOptionValue("simplex_iteration_limit", max(WARM_MIN_ITERATIONS, m.shape[1] // 2))
    sol = _run(h, chosen)
    if warm is not None and sol.model_status == "Iteration limit reached":
        h.clearSolver()
        h.setOptionValue("simplex_iteration_limit", highspy.kHighsIInf)
        h.setOptionValue("simplex_strategy", DUAL)
        cold = _run(h, chosen)
        sol = replace(cold, iterations=cold.iterations + sol.iterations, solve_s=cold.solve_s + sol.solve_s)
    in_model = np.flatnonzero(included)
    if by_row is None:
        return replace(sol, rows=in_model)
    pending = np.flatnonzero(m.lazy & ~included)
    rows = by_row[pending]
    iterations, rounds = sol.iterations, 0
    while sol.status is SolveStatus.OPTIMAL and sol.values is not None and pending.size:
        activity = rows @ sol.values
        hi = m.row_hi[pending]
        violated = activity > hi + LAZY_TOL * np.maximum(1.0, np.abs(hi))
        if not violated.any():
            break
        # Add the nearly full rows too: they are the next to be violated.
        take = _near_full(activity, hi)
        add = rows[np.flatnonzero(take)].tocsr()
        h.addRows(
            int(add.shape[0]),
            np.full(add.shape[0], -highspy.kHighsInf),
            hi[take],
            int(add.nnz),
            add.indptr[:-1].astype(np.int32),
            add.indices.astype(np.int32),
            add.data.astype(np.float64),
        )
        in_model = np.concatenate((in_model, pending[take]))
        pending, rows = pending[~take], rows[np.flatnonzero(~take)]
        h.setOptionValue("solver", "simplex")
        h.setOptionValue("simplex_strategy", DUAL)  # rows added: the basis is dual feasible
        if time_limit_s is not None:
            h.setOptionValue("time_limit", max(time_limit_s - (time.perf_counter() - started), 1e-3))
        sol = _run(h, chosen)
        iterations += sol.iterations
        rounds += 1
    return replace(sol, solve_s=time.perf_counter() - started, iterations=iterations, lazy_rounds=rounds, rows=in_model)


_STATUS = np.array(
    [highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic, highspy.HighsBasisStatus.kUpper], dtype=object
)
BOUND_TOL = 1e-9
"""A nonbasic value this close (relative) to its upper bound is at it."""


def _basis(m: LpMatrices, col: Statuses, row: Statuses, included: npt.NDArray[np.bool_]) -> highspy.HighsBasis:
    """The carried basis for the rows in the model; a status at an infinite bound is moved
    to the finite one."""
    col = np.where((col == AT_UPPER) & ~np.isfinite(m.col_hi), AT_LOWER, col)
    rows = np.flatnonzero(included)
    finite_lo = np.isfinite(m.row_lo[rows])
    row = np.where(row[rows] == ABSENT, BASIC, row[rows])
    row = np.where((row == AT_LOWER) & ~finite_lo, AT_UPPER, row)
    row = np.where((row == AT_UPPER) & ~np.isfinite(m.row_hi[rows]), AT_LOWER, row)
    b = highspy.HighsBasis()
    b.col_status = _STATUS[col].tolist()
    b.row_status = _STATUS[row].tolist()
    b.valid = True
    b.alien = True  # mapped from another LP: HiGHS checks and completes it
    return b


def statuses(sol: LpSolution, m: LpMatrices) -> tuple[Statuses, Statuses] | None:
    """The status of each column and row of ``m`` in ``sol``'s final basis (``ABSENT``: a row
    the solver did not hold), or ``None`` without a basis. Nonbasic
    columns and rows are placed at the bound their value is at."""
    h = sol.highs
    if h is None or sol.rows is None or sol.values is None or not h.getBasis().valid:
        return None
    _, basic = h.getBasicVariables()  # type: ignore[attr-defined]  # not in highspy's stubs
    basic = np.asarray(basic, dtype=np.int64)
    col = np.where(_at_upper(sol.values, m.col_hi), AT_UPPER, AT_LOWER).astype(np.int8)
    col[basic[basic >= 0]] = BASIC
    held = sol.rows
    activity = np.asarray(h.getSolution().row_value, dtype=np.float64)
    row = np.full(m.shape[0], ABSENT, dtype=np.int8)
    row[held] = np.where(_at_upper(activity, m.row_hi[held]), AT_UPPER, AT_LOWER)
    row[held[-basic[basic < 0] - 1]] = BASIC
    return col, row


def _at_upper(value: Floats, hi: Floats) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = np.isfinite(hi) & (value >= hi - BOUND_TOL * np.maximum(1.0, np.abs(hi)))
    return out


def _near_full(activity: Floats, hi: Floats) -> npt.NDArray[np.bool_]:
    return activity >= hi * (1 - LAZY_NEAR)


def resolve(previous: LpSolution, cols: Ints, lower: Floats, upper: Floats) -> LpSolution:
    """Change some column bounds and re-solve from the previous basis (dual simplex, warm)."""
    h = previous.highs
    if h is None:
        return previous
    h.changeColsBounds(int(cols.size), cols.astype(np.int32), lower, upper)
    h.setOptionValue("solver", "simplex")
    again = _run(h, "simplex")
    return LpSolution(
        again.status,
        again.values,
        again.objective,
        previous.solve_s + again.solve_s,
        previous.iterations + again.iterations,
        previous.method,
        again.model_status,
        h,
        previous.lazy_rounds,
        previous.rows,
    )


def _run(h: highspy.Highs, chosen: str) -> LpSolution:
    started = time.perf_counter()
    run_status = h.run()
    solve_s = time.perf_counter() - started
    model_status = h.getModelStatus()
    info = h.getInfo()
    iterations = int(info.simplex_iteration_count) + int(info.ipm_iteration_count)
    name = h.modelStatusToString(model_status)
    has_primal = info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusNone
    values: Floats | None = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_primal else None
    if run_status == highspy.HighsStatus.kError:
        status = SolveStatus.ERROR
    elif model_status == highspy.HighsModelStatus.kOptimal:
        status = SolveStatus.OPTIMAL
    elif model_status in (
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kInterrupt,
    ):
        status = SolveStatus.FEASIBLE if values is not None else SolveStatus.FALLBACK
    else:
        status = SolveStatus.ERROR
    objective = float(info.objective_function_value) if values is not None else float("nan")
    return LpSolution(status, values, objective, solve_s, iterations, chosen, name, h)
