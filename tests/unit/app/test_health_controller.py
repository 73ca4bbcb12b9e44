"""/health's controller check: a site with sessions is ready while it has a recent plan, or
while it has had none for less than MAX_PLAN_AGE_INTERVALS re-plan intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from ems.clock import FakeClock
from ems.health import MAX_PLAN_AGE_INTERVALS, SystemHealth
from ems.supervisor import ComponentHealth

INTERVAL_S = 60.0


@dataclass
class Plan:
    planned_at: datetime


@dataclass
class Settings:
    replan_interval_s: float = INTERVAL_S


@dataclass
class Site:
    id: str


@dataclass
class State:
    sessions: dict[str, list[str]] = field(default_factory=dict)

    def active(self, site_id: str) -> list[str]:
        return self.sessions.get(site_id, [])


@dataclass
class Controller:
    sites: tuple[Site, ...] = (Site("depot"),)
    plans: dict[str, Plan] = field(default_factory=dict)
    unplanned_since: dict[str, datetime] = field(default_factory=dict)
    replan_failures: int = 0
    settings: Settings = field(default_factory=Settings)
    state: State = field(default_factory=State)


class Components:
    def health(self) -> list[ComponentHealth]:
        return []


def ready(health: SystemHealth) -> bool:
    (check,) = [c for c in health.checks() if c.name == "controller"]
    return check.ready


LIMIT_S = MAX_PLAN_AGE_INTERVALS * INTERVAL_S


def make() -> tuple[FakeClock, Controller, SystemHealth]:
    clock = FakeClock()
    controller = Controller()
    return clock, controller, SystemHealth(clock, supervisor=Components(), controller=controller)


def test_an_idle_site_is_ready_without_a_plan() -> None:
    clock, _, health = make()
    clock.advance(10 * LIMIT_S)
    assert ready(health)


def test_a_plan_older_than_the_limit_is_not_ready() -> None:
    clock, controller, health = make()
    controller.state.sessions["depot"] = ["s0"]
    controller.plans["depot"] = Plan(clock.now())
    clock.advance(LIMIT_S - 1)
    assert ready(health)
    clock.advance(2)
    assert not ready(health)


@pytest.mark.parametrize("recorded", [True, False])
def test_sessions_never_planned_turn_not_ready_after_the_limit(recorded: bool) -> None:
    """With re-plans failing on record (the controller's ``unplanned_since``) or, with no record,
    from the first time /health saw the site so."""
    clock, controller, health = make()
    controller.state.sessions["depot"] = ["s0"]
    if recorded:
        controller.unplanned_since["depot"] = clock.now()
    assert ready(health)
    clock.advance(LIMIT_S - 1)
    assert ready(health)
    clock.advance(2)
    assert not ready(health)
    # A plan comes: ready again, and a later unplanned spell starts its own count.
    controller.plans["depot"] = Plan(clock.now())
    controller.unplanned_since.clear()
    assert ready(health)
    del controller.plans["depot"]
    assert ready(health)
    clock.advance(LIMIT_S + 1)
    assert not ready(health)


def test_the_failing_since_time_counts_before_health_first_looks() -> None:
    clock, controller, health = make()
    controller.state.sessions["depot"] = ["s0"]
    controller.unplanned_since["depot"] = clock.now() - timedelta(seconds=LIMIT_S + 1)
    assert not ready(health)
