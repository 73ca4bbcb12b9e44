from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.domain.card import AuthorizationStatus, Card, CardStatus, authorize_card
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec
from ems.domain.units import Phase
from ems.errors import SiteFileError
from ems.sitefile import load_site_file, parse_sites

EXAMPLE = Path(__file__).parents[3] / "examples" / "site.toml"


def test_example_site_file_loads() -> None:
    (site,) = load_site_file(EXAMPLE)
    assert site.id == "depot"
    assert site.timezone == "Europe/Amsterdam"
    assert site.ancestors("feeder-b-row-1") == ["feeder-b-row-1", "feeder-b"]
    cp1 = site.station("CP001")
    assert cp1 is not None and cp1.evses[1].phase_map == (Phase.L2, Phase.L3, Phase.L1)
    assert site.problems() == []


def test_site_problems_lists_every_problem() -> None:
    site = Site(
        id="s",
        capacity_w=-1,
        circuits=(Circuit("a", parent_id="b"), Circuit("b", parent_id="a"), Circuit("c", parent_id="nope")),
        stations=(
            StationSpec("cp", circuit_id="zz", evses=(EvseSpec(1, phases=1, phase_map=(Phase.L1, Phase.L2)),)),
            StationSpec("cp"),
        ),
    )
    problems = site.problems()
    text = "\n".join(problems)
    assert "capacity_w must not be negative" in text
    assert "cycle" in text
    assert "parent 'nope'" in text
    assert "circuit 'zz'" in text
    assert "phase_map must name 1" in text
    assert "station cp: defined more than once" in text


def test_bad_site_file_reports_all_problems_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[[sites]]
id = "x"
timezone = "Mars/Olympus"
capacity_w = "lots"
colour = "blue"
  [[sites.circuits]]
  id = "f"
  parent = "ghost"
  phase_limits_a = { L4 = 10 }
  [[sites.stations]]
  id = "cp"
  circuit = "f"
    [[sites.stations.evses]]
    id = 1
    phases = 2
    min_current_a = 40
    max_current_a = 32
"""
    )
    with pytest.raises(SiteFileError) as info:
        load_site_file(path)
    text = "\n".join(info.value.problems)
    for fragment in [
        "unknown timezone",
        "capacity_w must be a number",
        "unknown keys ['colour']",
        "parent 'ghost'",
        "unknown phase 'L4'",
        "phases must be 1 or 3",
        "exceeds max_current_a",
    ]:
        assert fragment in text, fragment
    assert len(info.value.problems) >= 7


def test_site_file_errors_for_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(SiteFileError, match="cannot read"):
        load_site_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[sites]\nid=")
    with pytest.raises(SiteFileError, match="not valid TOML"):
        load_site_file(broken)
    with pytest.raises(SiteFileError, match="no \\[\\[sites\\]\\]"):
        parse_sites({})


def test_card_authorization_rules() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert authorize_card(None, now) is AuthorizationStatus.INVALID
    assert authorize_card(Card("A"), now) is AuthorizationStatus.ACCEPTED
    assert authorize_card(Card("A", status=CardStatus.BLOCKED), now) is AuthorizationStatus.BLOCKED
    assert authorize_card(Card("A", expires_at=now), now) is AuthorizationStatus.EXPIRED
    assert authorize_card(Card("A", expires_at=now + timedelta(seconds=1)), now) is AuthorizationStatus.ACCEPTED


CALTECH_POD = """
[[sites]]
id = "garage"
  [[sites.circuits]]
  id = "transformer-1"
  phase_limits_a = { L1 = 420, L2 = 420, L3 = 420 }
    [sites.circuits.transformer]
    connection = "delta-wye"
    turns_ratio = 4
    primary_phase_limits_a = { L1 = 180.5, L2 = 180.5, L3 = 180.5 }
  [[sites.circuits]]
  id = "pod-ca"
  parent = "transformer-1"
  phase_limits_a = { L1 = 80, L2 = 80 }
  [[sites.stations]]
  id = "CA-303"
  circuit = "pod-ca"
    [[sites.stations.evses]]
    id = 1
    phases = 1
    lines = ["L1", "L2"]
    voltage_v = 208
"""


def test_site_file_places_an_evse_between_two_lines_behind_a_transformer() -> None:
    import tomllib

    (site,) = parse_sites(tomllib.loads(CALTECH_POD))
    evse = site.stations[0].evses[0]
    assert evse.lines == (Phase.L1, Phase.L2) and evse.phase_map == (Phase.L1,) and evse.voltage_v == 208
    t = site.circuit("transformer-1").transformer
    assert t is not None and t.connection == "delta-wye" and t.turns_ratio == 4
    assert dict(t.primary_phase_limits_a) == {Phase.L1: 180.5, Phase.L2: 180.5, Phase.L3: 180.5}
    assert site.circuit("pod-ca").transformer is None


def test_line_to_line_and_transformer_mistakes_are_all_reported_at_once() -> None:
    import tomllib

    raw = tomllib.loads(
        """
[[sites]]
id = "g"
  [[sites.circuits]]
  id = "t"
  transformer = { connection = "zigzag", turns_ratio = -2, primary_phase_limits_a = { L1 = -1, L9 = 3 }, taps = 2 }
  [[sites.stations]]
  id = "X"
  circuit = "t"
    [[sites.stations.evses]]
    id = 1
    phases = 3
    lines = ["L1", "L2"]
    [[sites.stations.evses]]
    id = 2
    phases = 1
    lines = ["L1", "L4"]
    [[sites.stations.evses]]
    id = 3
    phases = 1
    lines = ["L2", "L2"]
    [[sites.stations.evses]]
    id = 4
    phases = 1
    lines = "L1-L2"
    [[sites.stations.evses]]
    id = 5
    phases = 1
    phase_map = ["L3"]
    lines = ["L1", "L2"]
"""
    )
    with pytest.raises(SiteFileError) as exc:
        parse_sites(raw)
    text = "\n".join(exc.value.problems)
    assert "unknown connection 'zigzag'" in text
    assert "turns_ratio must be positive" in text
    assert "phase limit L1 must not be negative" in text
    assert "unknown phase 'L9'" in text
    assert "unknown keys ['taps']" in text
    assert "evse 1: lines (a line-to-line evse) needs phases = 1, got 3" in text
    assert "unknown phase 'L4'" in text
    assert "evse 3: lines must name two distinct lines" in text
    assert "lines must name two lines" in text
    assert "evse 5: phase_map of a line-to-line evse is its first line" in text


def test_the_documented_line_to_line_example_loads() -> None:
    import re
    import tomllib

    doc = (Path(__file__).parents[3] / "docs" / "site-file.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "lines = " in b)
    (site,) = parse_sites(tomllib.loads(block))
    assert site.problems() == []
    assert [e.lines for s in site.stations for e in s.evses] == [(Phase.L1, Phase.L2), (Phase.L3, Phase.L1)]
