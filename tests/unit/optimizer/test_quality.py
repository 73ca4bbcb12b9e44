"""Quality on workplace days, run online (re-plan every slot, sessions revealed on arrival).

Targets (issue 4): delivered energy within 0.1 % of the offline optimum, and at least as
many sessions fully served as earliest-deadline-first. Slow: ~100 re-plans per day.
"""

from __future__ import annotations

import pytest

from benchmarks.workplace import workplace_day
from ems.optimizer.mpc import replay
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm
from tests.unit.optimizer.invariants import assert_invariants


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_online_lp_beats_edf_and_llf_at_once(seed: int) -> None:
    day = workplace_day(200, 96, seed=seed, site_share=0.15)
    optimum = optimize(day, Options(min_current=False)).total_energy_wh  # offline, perfect foresight
    edf = optimize(day, Options(algorithm=Algorithm.EDF))
    online = replay(day)
    assert_invariants(day, online.schedule)
    assert online.schedule.total_energy_wh >= optimum * (1 - 1e-3)
    assert online.schedule.fully_served() >= edf.fully_served()
