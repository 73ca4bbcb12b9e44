"""Polygon rows over group sums (matrices.PhasorGroups): the same LP, fewer nonzeros."""

from __future__ import annotations

import numpy as np
import pytest

from ems.optimizer import lp
from ems.optimizer.horizon import Horizon, coarsen
from ems.optimizer.matrices import build
from ems.optimizer.plan import start_values
from ems.optimizer.problem import compile_problem
from ems.optimizer.snapshot import Snapshot
from tests.unit.optimizer.test_phasor import us_site


def _site(n: int, slots: int, seed: int) -> Snapshot:
    return us_site(n, slots, seed=seed, secondary_a=40.0 + n, primary_a=10.0 + n / 3)


@pytest.mark.parametrize(("n", "slots", "seed"), [(9, 8, 1), (30, 24, 2), (60, 48, 3)])
def test_grouped_rows_have_the_same_optimum_with_fewer_nonzeros(n: int, slots: int, seed: int) -> None:
    p = compile_problem(_site(n, slots, seed))
    for q in (p, coarsen(p, Horizon(exact_slots=4, min_columns=0))):
        grouped, direct = build(q), build(q, group_phasors=False)
        assert grouped.y_col >= 0 and direct.y_col == -1
        assert grouped.A.nnz < direct.A.nnz
        a, b = lp.solve(grouped), lp.solve(direct)
        assert a.status is b.status is lp.SolveStatus.OPTIMAL
        assert a.objective == pytest.approx(b.objective, rel=1e-7, abs=1e-7)
        assert a.values is not None and b.values is not None
        # Every x of the grouped optimum keeps the direct LP's rows (the polygon on x itself).
        x = np.zeros(direct.shape[1])
        x[: direct.n_x] = a.values[: grouped.n_x]
        x[direct.u_col :] = a.values[grouped.u_col : grouped.u_col + direct.shape[1] - direct.u_col]
        activity = direct.A @ x
        assert (activity <= direct.row_hi + 1e-6).all() and (activity >= direct.row_lo - 1e-6).all()


def test_start_values_fill_the_group_sums_consistently() -> None:
    p = compile_problem(_site(30, 24, 4))
    m = build(p)
    assert m.y_col >= 0
    rng = np.random.default_rng(0)
    v = start_values(p, m, rng.uniform(0.0, 7.0, (p.n, p.slots)))
    activity = m.A @ v
    # The sums' definitions and the requests hold exactly (the start is scaled into the exact
    # disc, so the inner polygon's rows may be off by up to its loss, with or without groups).
    for name, lo, hi in m.families:
        if name in ("phasor_sum", "request"):
            assert np.allclose(activity[lo:hi], m.row_hi[lo:hi], atol=1e-9), name


def test_no_groups_when_every_session_is_alone() -> None:
    p = compile_problem(us_site(3, 8, seed=1))  # one EVSE per line pair: nothing to sum
    assert build(p).y_col == -1


def test_a_warm_start_that_fills_the_lazy_rows_takes_them_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    p = compile_problem(_site(60, 48, 5))
    m = build(p)
    assert m.lazy.sum() < lp.LAZY_ALL_MIN_ROWS  # a small LP: by default the rounds stay
    cold = lp.solve(m)
    assert cold.values is not None
    small = lp.solve(m, warm=lp.WarmStart(cold.values))
    assert small.highs is not None and small.highs.getNumRow() < m.shape[0]
    monkeypatch.setattr(lp, "LAZY_ALL_MIN_ROWS", 0)
    assert cold.values is not None and cold.lazy_rounds >= 1
    full = m.lazy & (m.A.tocsr() @ cold.values >= m.row_hi * (1 - lp.LAZY_NEAR))
    assert full.sum() >= lp.LAZY_ALL_SHARE * m.lazy.sum()  # the lines bind: most of the day
    warm = lp.solve(m, warm=lp.WarmStart(cold.values))
    assert warm.highs is not None and warm.highs.getNumRow() == m.shape[0]
    assert warm.lazy_rounds == 0
    assert warm.objective == pytest.approx(cold.objective, rel=1e-7, abs=1e-7)
    # A start that fills none of them leaves them out, to be added when violated.
    idle = lp.solve(m, warm=lp.WarmStart(np.zeros(m.shape[1])))
    assert idle.highs is not None and idle.highs.getNumRow() < m.shape[0]
