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
