"""Wiring in the instance file: line-to-line EVSEs, transformers, current limits; the Caltech ACN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ems.errors import InvalidInput
from ems.optimize_cli import main
from ems.optimizer.instance import snapshot_from_json, snapshot_to_json
from ems.optimizer.snapshot import Snapshot

CALTECH = Path(__file__).parents[3] / "examples" / "sites" / "caltech_acn.json"


def caltech() -> Snapshot:
    return snapshot_from_json(json.loads(CALTECH.read_text()))


def test_caltech_file_compiles_to_eight_phasor_limits_and_reads_back_the_same() -> None:
    snap = caltech()
    assert len(snap.evses) == 54 and all(e.lines is not None and e.voltage_v == 208 for e in snap.evses)
    assert sorted(c.id for c in snap.current_limits) == sorted(
        [
            "transformer:L1",
            "transformer:L2",
            "transformer:L3",
            "transformer:primary:L1",
            "transformer:primary:L2",
            "transformer:primary:L3",
            "cc-pod:L1",
            "av-pod:L1",
        ]
    )
    assert all(not c.phase_limits_a for c in snap.circuits)  # moved into the phasor limits
    again = snapshot_from_json(json.loads(json.dumps(snapshot_to_json(snap))))
    assert again == snap


def test_bad_wiring_is_listed() -> None:
    data = json.loads(CALTECH.read_text())
    data["evses"][0]["lines"] = ["L1", "L1"]
    data["circuits"][0]["transformer"]["connection"] = "zigzag"
    data["circuits"][0]["transformer"]["turns_ratio"] = -4
    data["current_limits"] = [{"id": "x", "limit_a": 5, "terms": [["CA-999", 1, 0], ["CA-308", "a", 0]]}]
    with pytest.raises(InvalidInput) as err:
        snapshot_from_json(data)
    text = "\n".join(err.value.problems)
    for expected in ("evses[0].lines", "connection", "turns_ratio", "'CA-999' is not an evse", "terms[1]"):
        assert expected in text, (expected, err.value.problems)


def test_cli_reads_the_precision_from_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(CALTECH.read_text())
    data["slots"] = 8
    data["sessions"] = [
        {"id": f"s{k}", "evse": e["id"], "departure": "2026-01-05T02:00:00Z", "energy_wh": 30000}
        for k, e in enumerate(data["evses"])
    ]
    data["current_limit_loss"] = 0.02
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    assert main([str(path), "--summary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "OPTIMAL" and not out["violations"]
    data["current_limit_loss"] = 2
    path.write_text(json.dumps(data))
    assert main([str(path)]) == 2
    assert "current_limit_loss" in capsys.readouterr().err


def test_caltech_file_equals_acnportal_caltech_acn() -> None:
    """The compiled limits bound the same magnitudes as ACN-Sim's constraint matrix, angles and
    limits (acnportal is not a CI dependency: skipped without it)."""
    sites = pytest.importorskip("acnportal.acnsim.network.sites")
    net = sites.caltech_acn(basic_evse=True)
    snap = caltech()
    ids = list(net.station_ids)
    assert sorted(ids) == sorted(e.id for e in snap.evses)
    angles = net.phase_angles
    lines = {e.id: e.lines for e in snap.evses}
    from ems.optimizer.phasor import line_angle_deg

    assert all(abs(line_angle_deg(*lines[i]) - angles[i]) < 1e-9 for i in ids)  # type: ignore[misc]
    # ACN rows as complex coefficients per EVSE; ours the same, so equal rows bound equal magnitudes.
    acn = net.constraint_matrix * np.exp(1j * np.deg2rad([angles[i] for i in ids]))[None, :]
    ours = np.zeros((len(snap.current_limits), len(ids)), dtype=complex)
    col = {e: k for k, e in enumerate(ids)}
    for r, c in enumerate(snap.current_limits):
        for evse, coef, angle in c.terms:
            ours[r, col[evse]] += coef * np.exp(1j * np.deg2rad(angle))
    mine = [(float(c.limit_a), ours[r]) for r, c in enumerate(snap.current_limits)]
    assert len(mine) == len(net.magnitudes)
    for limit, row in zip(net.magnitudes, acn, strict=True):
        match = [m for m in mine if abs(m[0] - limit) < 1e-3 and np.allclose(m[1], row, atol=1e-9)]
        assert match, f"no compiled limit equals ACN's row with limit {limit}"
