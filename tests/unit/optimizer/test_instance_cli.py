"""Instance parsing (every problem at once), JSON round trip, and ``ems optimize``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ems import optimize_cli as cli
from ems.errors import InvalidInput
from ems.optimizer.instance import schedule_to_json, snapshot_from_json, snapshot_to_json
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm
from tests.unit.optimizer.test_scenarios import SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS[:4], ids=lambda p: p.stem)
def test_instance_round_trips(path: Path) -> None:
    snap = snapshot_from_json(json.loads(path.read_text()))
    assert snapshot_from_json(json.loads(json.dumps(snapshot_to_json(snap)))) == snap


def test_bad_instance_lists_every_problem_at_once() -> None:
    bad = {
        "start": "2026-01-05T00:00:00",  # no zone
        "slot_s": 0,
        "slots": 4,
        "site": {"capacity_w": [1, 2]},
        "circuits": [{"id": "a", "parent": "nowhere"}, {"id": "a"}],
        "evses": [{"id": "e1", "circuit": "zz", "phases": 2, "max_a": -1}],
        "sessions": [
            {"id": "s1", "evse": "e9", "arrival": "2026-01-05T10:00:00Z", "departure": "2026-01-05T09:00:00Z"},
        ],
    }
    with pytest.raises(InvalidInput) as err:
        snapshot_from_json(bad)
    text = "\n".join(err.value.problems)
    for needle in (
        "start",
        "energy_wh",
        "slot_s",
        "site.capacity_w",
        "parent 'nowhere'",
        "circuit a: defined more",
        "circuit 'zz'",
        "phases must be 1 or 3",
        "evse 'e9'",
        "departure",
    ):
        assert needle in text, needle


def test_cli_writes_a_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schedule.json"
    code = cli.main([str(SCENARIOS[0]), "--out", str(out)])
    assert code == 0
    body = json.loads(out.read_text())
    assert body["status"] in ("OPTIMAL", "FEASIBLE")
    assert {"status", "objective", "solve_s", "sessions", "site_power_w", "violations"} <= set(body)
    assert {"id", "power_w", "energy_wh", "unmet_wh", "limited_by"} <= set(body["sessions"][0])
    assert "ems optimize:" in capsys.readouterr().err


@pytest.mark.parametrize("algorithm", ["edf", "llf", "round-robin", "uncontrolled"])
def test_cli_runs_each_baseline(algorithm: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(SCENARIOS[0]), "--algorithm", algorithm]) == 0
    assert json.loads(capsys.readouterr().out)["algorithm"] == algorithm


def test_cli_bad_instance_exits_2_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"slot_s": -1, "slots": "x", "evses": [{"id": "e", "phases": 5}]}))
    assert cli.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n  - ") >= 3


def test_cli_not_json_and_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.json"
    path.write_text("{nope")
    assert cli.main([str(path)]) == 2
    assert cli.main([str(tmp_path / "missing.json")]) == 2
    assert cli.main([str(SCENARIOS[0]), "--solver", "pulp-nonexistent"]) == 2
    assert "Traceback" not in capsys.readouterr().err


SCHEMAS = Path(__file__).parents[3] / "docs" / "schemas"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_published_schemas_accept_scenarios_and_schedules(path: Path) -> None:
    import fastjsonschema

    instance = fastjsonschema.compile(json.loads((SCHEMAS / "instance.schema.json").read_text()))
    schedule = fastjsonschema.compile(json.loads((SCHEMAS / "schedule.schema.json").read_text()))
    raw = json.loads(path.read_text())
    instance(raw)
    instance(snapshot_to_json(snapshot_from_json(raw)))
    for algorithm in ("lp", "uncontrolled"):
        out = json.loads(json.dumps(schedule_to_json(optimize(snapshot_from_json(raw), Options(Algorithm(algorithm))))))
        schedule(out)
