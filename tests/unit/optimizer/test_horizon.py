"""The non-uniform horizon: blocks, exactness of the first slots, feasibility, quality online."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.workplace import workplace_day
from ems.optimizer.horizon import Horizon, aggregate, blocks, coarsen, expand
from ems.optimizer.matrices import build
from ems.optimizer.mpc import RollingPlanner, replay, roll
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.schedule import SolveStatus
from tests.unit.optimizer.invariants import assert_invariants

ALWAYS = Horizon(min_columns=0)


def test_blocks_cover_the_horizon_exact_first_then_doubling() -> None:
    start, length = blocks(96, Horizon())
    assert length.sum() == 96
    assert (length[:4] == 1).all() and length[4] == 2
    assert list(length[4:10]) == [2, 2, 4, 4, 8, 8]
    assert length.max() == 16
    assert (start == np.concatenate(([0], np.cumsum(length)[:-1]))).all()
    s, lengths = blocks(5, Horizon())
    assert list(lengths) == [1, 1, 1, 1, 1] and list(s) == [0, 1, 2, 3, 4]


def test_a_coarse_plan_keeps_energy_through_expand_and_aggregate() -> None:
    p = compile_problem(workplace_day(40, 96, seed=2).validate())
    c = coarsen(p, ALWAYS)
    assert c.coarse is not None and c.slots < p.slots
    m = build(c)
    assert m.shape[1] < build(p).shape[1]
    rng = np.random.default_rng(0)
    x = (
        rng.uniform(0, 1, (c.n, c.slots))
        * c.active()
        * c.window_share(np.repeat(np.arange(c.n), c.slots), np.tile(np.arange(c.slots), c.n)).reshape(c.n, c.slots)
    )
    fine = expand(p, c, x)
    assert np.allclose(fine.sum(axis=1) * p.slot_h, x @ c.dur_h)
    assert not (fine * ~p.active()).any()
    assert np.allclose(aggregate(c, fine) @ c.dur_h, x @ c.dur_h)


@pytest.mark.slow
def test_replanning_over_the_coarse_horizon_stays_feasible_and_loses_at_most_0_2_percent() -> None:
    day = workplace_day(80, 48, seed=4, site_share=0.15)
    coarse = replay(day, horizon=ALWAYS)
    full = replay(day, horizon=None)
    assert set(coarse.statuses) == {str(SolveStatus.OPTIMAL)}
    assert_invariants(day, coarse.schedule)
    assert coarse.schedule.total_energy_wh >= full.schedule.total_energy_wh * (1 - 2e-3)
    assert coarse.schedule.fully_served() >= full.schedule.fully_served() * (1 - 2e-3) - 1


def test_every_coarse_replan_is_within_every_limit() -> None:
    day = workplace_day(60, 48, seed=5, site_share=0.15)
    planner = RollingPlanner(horizon=ALWAYS)
    delivered = {s.id: 0.0 for s in day.sessions}
    for t in range(0, 40, 3):
        sub = roll(day, t, delivered, now=day.slot_start(t))
        if not sub.sessions:
            continue
        sch = planner.plan(sub)
        assert sch.status is SolveStatus.OPTIMAL, sch.violations
        assert_invariants(sub, sch)
        for k, sid in enumerate(sch.session_ids):
            delivered[sid] += float(sch.power_w[k, :3].sum()) * sub.slot_s / 3600


def test_one_shot_plans_use_the_full_model_unless_asked() -> None:
    day = workplace_day(200, 96, seed=1)
    assert "lp_slots" in optimize(day).stats and optimize(day).stats["lp_slots"] == 96
    assert optimize(day, Options(horizon=ALWAYS)).stats["lp_slots"] < 96
