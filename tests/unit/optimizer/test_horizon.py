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
    assert length.sum() == 96 and length.size == 18
    assert (length[:8] == 1).all() and length[8] == 2
    assert list(length[8:14]) == [2, 2, 4, 4, 8, 8]
    assert length.max() == 16
    assert (start == np.concatenate(([0], np.cumsum(length)[:-1]))).all()
    assert blocks(288, Horizon())[1].size == 30
    s, lengths = blocks(5, Horizon(exact_slots=4))
    assert list(lengths) == [1, 1, 1, 1, 1] and list(s) == [0, 1, 2, 3, 4]
    s, lengths = blocks(12, Horizon(exact_slots=4))
    assert list(lengths) == [1, 1, 1, 1, 2, 2, 4]


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
def test_replanning_over_the_coarse_horizon_stays_feasible_and_loses_no_sessions_on_balance() -> None:
    """Energy within 0.2 % every day; sessions fully met summed over eight days within 1.5 %.

    One day's count is chaotic (80 sessions: +-2 between the full model and itself with one
    objective weight nudged by 1 %; the same LP optima reached at other vertices, as with or
    without a carried basis, move coarse - full by -3 to +2 a day), so the days are summed;
    the 0.2 % target is measured on 1,000-session days in docs/benchmarks/optimizer.md.
    Measured over seeds 1-12: coarse - full -5 of 635 without a carried basis, -7 of 632 with
    one; over seeds 1-8 with it, -5 of 428. (With 4 exact slots, seeds 1-4 lost 4 of about 200.)
    """
    coarse_met = full_met = 0
    for seed in range(1, 9):
        day = workplace_day(80, 96, seed=seed, site_share=0.15)
        coarse = replay(day, horizon=ALWAYS)
        full = replay(day, horizon=None)
        assert set(coarse.statuses) == {str(SolveStatus.OPTIMAL)}
        assert_invariants(day, coarse.schedule)
        assert coarse.schedule.total_energy_wh >= full.schedule.total_energy_wh * (1 - 2e-3)
        coarse_met += coarse.schedule.fully_served()
        full_met += full.schedule.fully_served()
    assert coarse_met >= full_met * (1 - 1.5e-2)


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
