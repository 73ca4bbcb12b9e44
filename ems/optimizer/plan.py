"""The optimizer's front door: snapshot in, schedule out, never an exception for a hard day.

``optimize(snapshot, options)`` runs compile -> build -> solve -> repair -> explain and always
returns a schedule within every hard limit (except the ``uncontrolled`` baseline, whose
status then says ``INFEASIBLE``): a failed or timed-out LP falls back to EDF.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ems.errors import NotAvailable
from ems.optimizer import baselines, explain, lp
from ems.optimizer.carry import Carried, Identity, carry, identify
from ems.optimizer.draw import learned
from ems.optimizer.fairness import symmetrize
from ems.optimizer.feasibility import check
from ems.optimizer.horizon import Horizon, aggregate, coarsen, expand
from ems.optimizer.matrices import LpMatrices, Weights, build
from ems.optimizer.phasor import DEFAULT_LOSS
from ems.optimizer.problem import Floats, Problem, compile_problem
from ems.optimizer.repair import (
    EPS_KW,
    enforce_min_current,
    scale_into_limits,
    session_lines,
    session_paths,
    top_up,
)
from ems.optimizer.schedule import Algorithm, Schedule, SolveStatus, Violation
from ems.optimizer.snapshot import Snapshot

FALLBACK_ALGORITHM = Algorithm.EDF
HEURISTIC_START_COLS = 50_000
"""From this many columns a cold LP starts from the EDF plan (below it, EDF costs more than it saves)."""
"""Serves the most sessions fully among the heuristics on workplace days (docs/optimizer.md)."""


@dataclass(frozen=True, slots=True)
class Options:
    algorithm: Algorithm = Algorithm.LP
    solver: str = "highs"
    """``highs`` (direct), or ``pulp-<name>`` for a PuLP solver (``pulp-cbc``, ``pulp-glpk``, ...)."""
    time_limit_s: float | None = None
    method: lp.LpMethod = lp.LpMethod.AUTO
    weights: Weights = field(default_factory=Weights)
    min_current: bool = True
    """Apply the minimum-current repair (repair.py)."""
    horizon: Horizon | None = None
    """Plan over a non-uniform horizon (horizon.py) from ``Horizon.min_columns`` columns;
    ``None``: the uniform LP (the full model). One-shot plans default to the full model;
    :class:`ems.optimizer.mpc.RollingPlanner` (re-plans, whose tail the next re-plan
    replaces) defaults to ``Horizon()``."""
    symmetric: bool = True
    """Give identical sessions identical plans (fairness.py): exact, no energy cost."""
    min_current_rounds: int = 0
    """LP re-solves around paused sessions before the final repair (0: repair only; measured: more
    rounds cost time and did not deliver more energy online, docs/benchmarks/optimizer.md)."""
    current_limit_loss: float = DEFAULT_LOSS
    """Precision of the LP's inner polygon of each phasor (line-current) limit: the largest
    relative loss of the limit (0.005: 0.5 %; phasor.py). Smaller: more rows per limit and slot
    (about ``1 / sqrt(loss)``); the plan never breaks the exact limit whatever the setting."""


@dataclass(frozen=True, slots=True)
class Solved:
    """What the LP stage produced, before the schedule is assembled (also used by mpc.py)."""

    x_kw: Floats
    status: SolveStatus
    solver: str
    solve_s: float
    stats: dict[str, float | int | str]
    lp_objective: float = float("nan")
    solution: lp.LpSolution | None = None
    matrices: LpMatrices | None = None
    basis: Carried | None = None
    """The LP's final basis with its identity, when asked for (``solve_lp(..., carry_basis=True)``)."""


def optimize(snapshot: Snapshot, options: Options | None = None) -> Schedule:
    """Plan ``snapshot`` (validated here: raises ``InvalidInput`` listing every problem)."""
    opts = options or Options()
    started = time.perf_counter()
    p = compile_problem(snapshot.validate())
    if opts.algorithm is Algorithm.LP:
        solved = solve_lp(p, opts)
    else:
        t0 = time.perf_counter()
        x = baselines.plan(p, opts.algorithm)
        solved = Solved(x, SolveStatus.FEASIBLE, opts.algorithm.value, time.perf_counter() - t0, {})
    return finish(p, opts.algorithm, solved, time.perf_counter() - started, line_loss=opts.current_limit_loss)


def solve_lp(
    p: Problem,
    opts: Options,
    warm_kw: Floats | None = None,
    *,
    warm_basis: Carried | None = None,
    carry_basis: bool = False,
) -> Solved:
    """Build and solve the LP (over ``opts.horizon`` when set); fall back to EDF when it gives
    nothing usable. ``warm_kw`` (kW, sessions x snapshot slots): a plan to start HiGHS from;
    ``warm_basis``: the basis HiGHS ended the plan of ``warm_kw`` with (carry.py); with
    ``carry_basis`` the result carries this LP's final basis for the next plan."""
    t0 = time.perf_counter()
    lp_p = coarsen(p, opts.horizon) if opts.horizon is not None and opts.solver == "highs" else p
    m = build(lp_p, opts.weights, current_limit_loss=opts.current_limit_loss)
    build_s = time.perf_counter() - t0
    stats: dict[str, float | int | str] = {
        "build_s": build_s,
        "variables": m.shape[1],
        "rows": m.shape[0],
        "nonzeros": int(m.A.nnz),
        "lp_slots": lp_p.slots,
    }
    fallback: Floats | None = None
    identity: Identity | None = None
    basis: Carried | None = None
    if opts.solver == "highs":
        warm: lp.WarmStart | None = None
        if warm_kw is not None:
            values = start_values(lp_p, m, aggregate(lp_p, warm_kw))
            if warm_basis is not None:
                identity = identify(lp_p, m)
                warm = lp.WarmStart(values, *carry(warm_basis, identity))
            else:
                warm = lp.WarmStart(values)
        elif m.shape[1] >= HEURISTIC_START_COLS and lp.choose_method(m, opts.method) == "simplex":
            # Large cold solves start from the EDF plan: it costs 0.7 s at 3,000 x 96 and
            # saves HiGHS 40 % of its iterations (3.4 s -> 1.6 s), and it is the fallback anyway.
            fallback = baselines.plan(p, FALLBACK_ALGORITHM)
            warm = lp.WarmStart(start_values(lp_p, m, aggregate(lp_p, fallback)))
            stats["start"] = FALLBACK_ALGORITHM.value
        sol = lp.solve(m, time_limit_s=opts.time_limit_s, method=opts.method, warm=warm)
        flags = lp.statuses(sol, m) if carry_basis and sol.status is SolveStatus.OPTIMAL else None
        if flags is not None:
            basis = Carried(identity if identity is not None else identify(lp_p, m), *flags)
    elif opts.solver.startswith("pulp-"):
        from ems.optimizer import pulp_model  # PuLP is slow to import; only when asked for

        sol = pulp_model.solve(m, opts.solver.removeprefix("pulp-"), time_limit_s=opts.time_limit_s)
    else:
        raise NotAvailable(f"unknown solver {opts.solver!r} (use highs or pulp-<solver>)")
    stats.update({"iterations": sol.iterations, "method": sol.method, "model_status": sol.model_status})
    if sol.values is not None and sol.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        x = _to_grid(lp_p, m, sol.values)
        if opts.symmetric:
            x = symmetrize(lp_p, x, rotate=lp_p.coarse is None)
        x = scale_into_limits(p, expand(p, lp_p, x))
        if opts.min_current:
            rounds = opts.min_current_rounds if lp_p is p else 0
            x, sol = _min_current(p, m, x, sol, rounds, exact_slots(lp_p))
            # The repair and the top-up go in rank order, ties by position: make equals equal again.
            x = symmetrize(p, x) if opts.symmetric else x
            stats["iterations"] = sol.iterations
        return Solved(x, sol.status, opts.solver, sol.solve_s, stats, sol.objective, sol, m, basis)
    stats["error"] = f"LP {sol.model_status}: planned with {FALLBACK_ALGORITHM.value}"
    status = SolveStatus.FALLBACK if sol.status is SolveStatus.FALLBACK else SolveStatus.ERROR
    x = fallback if fallback is not None else baselines.plan(p, FALLBACK_ALGORITHM)
    return Solved(x, status, opts.solver, sol.solve_s, stats, float("nan"), sol, m)


def start_values(p: Problem, m: LpMatrices, x: Floats) -> Floats:
    """LP column values from a plan ``x`` (kW, sessions x slots) that satisfy every row.

    The plan is scaled into the limits, then shortfalls ``u`` and the largest relative
    shortfall ``z`` are recomputed: HiGHS starts from a consistent point (an inconsistent
    one once cost 15x the iterations of a cold solve, docs/benchmarks/optimizer.md).
    """
    xs = np.minimum(scale_into_limits(p, x)[m.var_sess, m.var_slot], m.col_hi[: m.n_x])
    values = np.zeros(m.shape[1])
    values[: m.n_x] = xs
    energy = np.bincount(m.var_sess, weights=xs * p.dur_h[m.var_slot], minlength=p.n)
    short = np.maximum(p.need_kwh - energy, 0.0)
    values[m.u_col : m.z_col] = short
    live = p.need_kwh > 0
    values[m.z_col] = float((short[live] / p.need_kwh[live]).max()) if live.any() else 0.0
    if m.peak_col >= 0:
        values[m.peak_col : m.peak_col + p.n] = _peaks(m, xs, p.n)  # peak[i] >= every x[i, t] it covers
    if m.d_col >= 0:
        pair = np.flatnonzero(m.var_sess[1:] == m.var_sess[:-1])
        values[m.d_col : m.d_col + pair.size] = np.abs(xs[pair + 1] - xs[pair])
    if m.y_col >= 0:
        summed = m.y_of_x >= 0
        values[m.y_col : m.y_col + m.n_y] = np.bincount(m.y_of_x[summed], weights=xs[summed], minlength=m.n_y)
    return values


def _peaks(m: LpMatrices, xs: Floats, n: int) -> Floats:
    """Per session: the largest value among its columns (0 without any)."""
    out = np.zeros(n)
    np.maximum.at(out, m.var_sess, xs)
    return out


def _to_grid(p: Problem, m: LpMatrices, values: Floats) -> Floats:
    x = np.zeros((p.n, p.slots))
    x[m.var_sess, m.var_slot] = values[: m.n_x]
    return x


def exact_slots(p: Problem) -> int | None:
    """Slots before the first coarse block (``None``: every slot is exact)."""
    if p.coarse is None:
        return None
    coarse = np.flatnonzero(p.coarse.length > 1)
    return int(p.coarse.start[coarse[0]]) if coarse.size else None


def _min_current(
    p: Problem, m: LpMatrices, x: Floats, sol: lp.LpSolution, rounds: int, until: int | None = None
) -> tuple[Floats, lp.LpSolution]:
    """Repair, then let the LP re-plan around the sessions the repair paused (repair.py).

    Over a non-uniform horizon the full repair and the top-up run on the exact slots
    (``until``); later slots are a forecast and are only cut below the minimum current.
    """
    paths = session_paths(p)
    line_data = session_lines(p)
    for _ in range(rounds):
        repaired = enforce_min_current(p, x, paths, line_data=line_data)
        before = x[m.var_sess, m.var_slot]
        after = repaired[m.var_sess, m.var_slot]
        paused = np.flatnonzero((before > EPS_KW) & (before < p.min_kw[m.var_sess] - EPS_KW) & (after <= EPS_KW))
        if paused.size == 0 or sol.highs is None:
            return top_up(p, repaired, paths, line_data=line_data), sol
        again = lp.resolve(sol, paused, np.zeros(paused.size), np.zeros(paused.size))
        if again.status is not SolveStatus.OPTIMAL or again.values is None:
            return top_up(p, repaired, paths, line_data=line_data), sol
        sol = again
        x = scale_into_limits(p, _to_grid(p, m, again.values))
    repaired = enforce_min_current(p, x, paths, until, line_data=line_data)
    return top_up(p, repaired, paths, until, line_data=line_data), sol


def finish(
    p: Problem, algorithm: Algorithm, solved: Solved, total_s: float, *, line_loss: float = DEFAULT_LOSS
) -> Schedule:
    """Assemble the schedule: exact energy bookkeeping, reasons, violations, objective terms."""
    x = np.where(solved.x_kw > 0.0, solved.x_kw, 0.0)
    power_w = x * 1000.0
    energy_wh = power_w.sum(axis=1) * p.slot_h
    unmet_wh = p.need_kwh * 1000.0 - energy_wh
    hard: list[Violation] = check(p, power_w)
    status = solved.status
    if hard:
        status = SolveStatus.INFEASIBLE
    volts_phases = p.volts_phases
    evses = {e.id: e for e in p.snapshot.evses}
    phases = tuple(
        evses[s.evse].phase_map[: (learned(s, evses[s.evse]).phases or evses[s.evse].phases)]
        for s in p.snapshot.sessions
    )
    prices = np.asarray(p.snapshot.prices) if p.snapshot.prices is not None else np.zeros(p.slots)
    need = p.need_kwh
    rel_short = np.where(need > 0, unmet_wh / np.maximum(need * 1000.0, 1e-9), 0.0)
    objective = {
        "energy_wh": float(energy_wh.sum()),
        "unmet_wh": float(unmet_wh.sum()),
        "fully_served": int(np.count_nonzero(unmet_wh <= 1.0)),
        "cost": float((x.sum(axis=0) * p.slot_h * prices).sum()),
        "max_relative_shortfall": float(rel_short.max()) if rel_short.size else 0.0,
        "power_changes_w": float(np.abs(np.diff(power_w, axis=1)).sum()),
        "lp": solved.lp_objective,
    }
    stats = dict(solved.stats)
    stats["total_s"] = total_s
    return Schedule(
        status=status,
        algorithm=algorithm,
        solver=solved.solver,
        start=p.snapshot.start,
        slot_s=p.snapshot.slot_s,
        session_ids=tuple(s.id for s in p.snapshot.sessions),
        power_w=power_w,
        current_a=power_w / volts_phases[:, None],
        session_phases=phases,
        energy_wh=energy_wh,
        unmet_wh=unmet_wh,
        limited_by=explain.limited_by(p, x, unmet_wh / 1000.0, line_loss=line_loss),
        site_power_w=power_w.sum(axis=0),
        violations=(*explain.soft_violations(p, x), *hard),
        objective=objective,
        solve_s=solved.solve_s,
        stats=stats,
    )
