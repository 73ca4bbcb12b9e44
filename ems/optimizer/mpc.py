"""Rolling horizon (model-predictive control): re-plan from an updated snapshot, warm.

The controller re-plans on every event (a session starts or ends, a capacity signal, drift
from plan, the horizon moving on). :func:`roll` moves a snapshot forward by whole slots
with the energy actually delivered; :class:`RollingPlanner` keeps the last plan's values,
keyed by (session id, absolute slot time), and its final simplex basis (carry.py), and hands
both to the next solve: on replayed ACN-Sim days (Caltech 500, single-phase 500) the carried
basis cut HiGHS's time per re-plan by 30-50 % against the values alone
(docs/benchmarks/optimizer.md, fourth round). :func:`replay` runs a whole day online: at each
slot it plans with only the sessions that have arrived, applies the first slot, and moves on
(what a live site does, and how the quality numbers in docs/benchmarks/optimizer.md were measured).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from ems.optimizer import baselines
from ems.optimizer.carry import Carried
from ems.optimizer.horizon import DEFAULT_HORIZON, Horizon
from ems.optimizer.plan import Options, Solved, finish, solve_lp
from ems.optimizer.problem import Floats, Problem, compile_problem
from ems.optimizer.schedule import Algorithm, Schedule, SolveStatus
from ems.optimizer.snapshot import CircuitLimits, SiteLimits, Snapshot


def roll(
    snapshot: Snapshot,
    elapsed_slots: int,
    delivered_wh: Mapping[str, float] | None = None,
    *,
    horizon_slots: int | None = None,
    now: datetime | None = None,
) -> Snapshot:
    """``snapshot`` moved on by ``elapsed_slots``: series sliced, departed sessions dropped.

    ``delivered_wh`` replaces sessions' delivered energy (others keep theirs); with ``now``,
    only sessions that have arrived by ``now`` are kept (no knowledge of the future).
    """
    snap = snapshot
    first = elapsed_slots
    last = snap.slots if horizon_slots is None else min(snap.slots, first + horizon_slots)
    start = snap.start + timedelta(seconds=snap.slot_s * first)

    def cut(series: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return None if series is None else series[first:last]

    delivered = delivered_wh or {}
    sessions = tuple(
        replace(s, delivered_wh=delivered.get(s.id, s.delivered_wh))
        for s in snap.sessions
        if s.departure > start and (now is None or s.arrival <= now)
    )
    return Snapshot(
        start=start,
        slot_s=snap.slot_s,
        slots=last - first,
        site=SiteLimits(
            cut(snap.site.capacity_w), snap.site.phase_limits_a, cut(snap.site.base_load_w), cut(snap.site.pv_w)
        ),
        circuits=tuple(CircuitLimits(c.id, c.parent, cut(c.capacity_w), c.phase_limits_a) for c in snap.circuits),
        evses=snap.evses,
        sessions=sessions,
        prices=cut(snap.prices),
        current_limits=snap.current_limits,
    )


@dataclass(slots=True)
class RollingPlanner:
    """Plans successive snapshots, warm-starting each LP from the previous plan."""

    options: Options = field(default_factory=Options)
    horizon: Horizon | None = field(default_factory=Horizon)
    """Used when ``options.horizon`` is ``None``: re-plans are planned over a non-uniform
    horizon by default (``None`` here too: the full uniform LP every time)."""
    carry_basis: bool = True
    """Start HiGHS from the last plan's basis mapped onto the new LP (carry.py), beside its values."""
    _last: dict[str, tuple[int, Floats]] = field(default_factory=dict)
    """Per session: the last plan's first absolute slot number and its power (kW)."""
    _basis: Carried | None = None
    """The last LP's final basis (with ``carry_basis``)."""

    def plan(self, snapshot: Snapshot) -> Schedule:
        started = time.perf_counter()
        p = compile_problem(snapshot.validate())
        if self.options.algorithm is not Algorithm.LP:
            x = baselines.plan(p, self.options.algorithm)
            solved = Solved(x, SolveStatus.FEASIBLE, self.options.algorithm.value, 0.0, {})
            loss = self.options.current_limit_loss
            return finish(p, self.options.algorithm, solved, time.perf_counter() - started, line_loss=loss)
        opts = self.options if self.options.horizon is not None else replace(self.options, horizon=self.horizon)
        warm = self._warm(p)
        basis = self._basis if warm is not None else None
        solved = solve_lp(p, opts, warm_kw=warm, warm_basis=basis, carry_basis=self.carry_basis)
        if solved.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            self._remember(p, solved.x_kw)
            self._basis = solved.basis
        return finish(p, Algorithm.LP, solved, time.perf_counter() - started, line_loss=opts.current_limit_loss)

    def _remember(self, p: Problem, x_kw: Floats) -> None:
        base = int(p.snapshot.start.timestamp()) // p.snapshot.slot_s
        self._last = {s.id: (base, x_kw[i].copy()) for i, s in enumerate(p.snapshot.sessions)}

    def _warm(self, p: Problem) -> Floats | None:
        """The last plan on this snapshot's slots (kW), or ``None`` before the first plan."""
        if not self._last:
            return None
        base = int(p.snapshot.start.timestamp()) // p.snapshot.slot_s
        grid = np.zeros((p.n, p.slots))
        for i, s in enumerate(p.snapshot.sessions):
            last = self._last.get(s.id)
            if last is None:
                continue
            shift = base - last[0]
            if shift < 0:
                continue
            old = last[1][shift : shift + p.slots]
            grid[i, : old.size] = old
        return grid


@dataclass(frozen=True, slots=True)
class Replay:
    """A day run online: what was actually delivered, and the cost of re-planning."""

    schedule: Schedule
    """The day as executed (power per session per slot), checked against every limit."""
    plan_s: tuple[float, ...]
    """Wall time of each re-plan (s)."""
    sessions_planned: tuple[int, ...]
    statuses: tuple[str, ...] = ()
    """Status of each re-plan (OPTIMAL for its model, or FEASIBLE/FALLBACK/...)."""


def replay(
    day: Snapshot, options: Options | None = None, *, step_slots: int = 1, horizon: Horizon | None = DEFAULT_HORIZON
) -> Replay:
    """Re-plan every ``step_slots`` slots with only the sessions arrived so far
    (``horizon``: see :class:`RollingPlanner`; ``None``: the full uniform LP)."""
    opts = options or Options()
    planner = RollingPlanner(opts, horizon)
    p_day = compile_problem(day.validate())
    index = {s.id: i for i, s in enumerate(day.sessions)}
    executed = np.zeros((p_day.n, day.slots))
    delivered = {s.id: s.delivered_wh for s in day.sessions}
    times: list[float] = []
    counts: list[int] = []
    statuses: list[str] = []
    plan: Schedule | None = None
    for t in range(day.slots):
        now = day.slot_start(t)
        if plan is None or t % step_slots == 0:
            sub = roll(day, t, delivered, now=now)
            started = time.perf_counter()
            plan = planner.plan(sub)
            times.append(time.perf_counter() - started)
            counts.append(len(sub.sessions))
            statuses.append(str(plan.status))
            plan_start = t
        offset = t - plan_start
        for k, sid in enumerate(plan.session_ids):
            kw = plan.power_w[k, offset] / 1000.0 if offset < plan.slots else 0.0
            executed[index[sid], t] = kw
            delivered[sid] += kw * 1000.0 * p_day.slot_h
    solved = Solved(executed, SolveStatus.FEASIBLE, f"mpc/{opts.algorithm.value}", float(sum(times)), {})
    day_schedule = finish(p_day, opts.algorithm, solved, float(sum(times)), line_loss=opts.current_limit_loss)
    return Replay(day_schedule, tuple(times), tuple(counts), tuple(statuses))
