"""Every tests/scenarios/*.json instance, replayed through every algorithm and checked."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ems.optimizer.instance import schedule_to_json, snapshot_from_json
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm, Schedule, SolveStatus
from ems.optimizer.snapshot import Snapshot
from tests.unit.optimizer.invariants import assert_invariants

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.json"))
HEURISTICS = [Algorithm.EDF, Algorithm.LLF, Algorithm.ROUND_ROBIN]
ENERGY_RTOL = 1e-3
"""The LP may trail a baseline by at most the 0.1 % quality target (weights + min-current repair)."""


def load(path: Path) -> tuple[Snapshot, dict[str, Any]]:
    raw = json.loads(path.read_text())
    return snapshot_from_json(raw), raw.get("expect", {})


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_lp_meets_invariants_and_expectations(path: Path) -> None:
    snap, expect = load(path)
    sch = optimize(snap)
    assert_invariants(snap, sch)
    assert sch.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    check_expectations(snap, sch, expect)
    json.dumps(schedule_to_json(sch))  # serialisable, no NaN surprises


@pytest.mark.parametrize("algorithm", HEURISTICS, ids=str)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_heuristics_respect_the_tree_and_lp_delivers_at_least_as_much(path: Path, algorithm: Algorithm) -> None:
    snap, _ = load(path)
    base = optimize(snap, Options(algorithm=algorithm))
    assert_invariants(snap, base)
    assert base.status is SolveStatus.FEASIBLE
    lp = optimize(snap)
    assert lp.total_energy_wh >= base.total_energy_wh - 1e-3


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_uncontrolled_is_honest_about_breaking_limits(path: Path) -> None:
    snap, _ = load(path)
    sch = optimize(snap, Options(algorithm=Algorithm.UNCONTROLLED))
    assert_invariants(snap, sch, respects_limits=False)
    hard = [v for v in sch.violations if v.kind in ("node_power", "node_phase")]
    assert (sch.status is SolveStatus.INFEASIBLE) == bool(hard)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_pulp_cbc_solves_the_same_lp(path: Path) -> None:
    snap, _ = load(path)
    highs = optimize(snap)
    cbc = optimize(snap, Options(solver="pulp-cbc"))
    assert cbc.status is highs.status is SolveStatus.OPTIMAL
    # Same LP, same optimum; the solution itself may differ where the LP has ties.
    assert math.isclose(cbc.objective["lp"], highs.objective["lp"], rel_tol=1e-6, abs_tol=1e-6)
    assert math.isclose(cbc.total_energy_wh, highs.total_energy_wh, rel_tol=ENERGY_RTOL, abs_tol=1e-3)
    assert_invariants(snap, cbc)


def check_expectations(snap: Snapshot, sch: Schedule, expect: dict[str, Any]) -> None:
    if "status" in expect:
        assert sch.status == expect["status"]
    if "fully_served" in expect:
        assert sch.fully_served() == expect["fully_served"]
    if "energy_wh" in expect:
        assert sch.total_energy_wh == pytest.approx(expect["energy_wh"], abs=1.0)
    for sid, wh in expect.get("energy_wh_of", {}).items():
        assert sch.session(sid).energy_wh == pytest.approx(wh, abs=1.0)
    for sid, reason in expect.get("limited_by", {}).items():
        assert reason in sch.session(sid).limited_by, sch.session(sid).limited_by
    kinds = {v.kind for v in sch.violations}
    for kind in expect.get("violations", []):
        assert kind in kinds
    if "violations" not in expect:
        assert not kinds, sch.violations
    for t in expect.get("zero_slots", []):
        assert sch.site_power_w[t] == pytest.approx(0.0, abs=1e-6)
    for sid, slots in expect.get("zero_slots_of", {}).items():
        for t in slots:
            assert sch.session(sid).power_w[t] == pytest.approx(0.0, abs=1e-6)
    if "charging_slots" in expect:
        charging = [t for t in range(snap.slots) if sch.site_power_w[t] > 1.0]
        assert charging == expect["charging_slots"]
