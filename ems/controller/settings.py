"""The controller's settings, and the capacity timelines it plans and cuts against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ems.controller.planning import PlanningSettings
from ems.domain.capacity import CapacityInterval
from ems.domain.site import Site


class CapacityTimelines(Protocol):
    """What the grid-capacity service offers the controller (``ems.services.capacity.CapacityService``)."""

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]: ...


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    planning: PlanningSettings = field(default_factory=PlanningSettings)
    replan_interval_s: float = 60.0
    debounce_s: float = 0.25
    """Fold a burst of events (a fleet reconnecting) into one re-plan."""
    wave_wait_s: float = 5.0
    """How long raises wait for answers to the cuts before going ahead (unanswered cuts count at old limits)."""
    max_in_flight: int = 64
    """Profile sends out at once (a sliding window: the most urgent cuts are in force first)."""
    shutdown_grace_s: float = 2.0
    """At shutdown, how long sends still out may take to be answered before they are cancelled."""


def site_timelines(
    capacity: CapacityTimelines | None, site: Site, planning: PlanningSettings
) -> dict[str | None, list[CapacityInterval]]:
    """The capacity in force over the planning horizon: the site's (key ``None``) and each circuit's."""
    if capacity is None:
        return {}
    horizon_s = planning.slot_s * planning.horizon_slots
    out: dict[str | None, list[CapacityInterval]] = {None: capacity.timeline(site.id, horizon_s=horizon_s)}
    for c in site.circuits:
        out[c.id] = capacity.timeline(site.id, c.id, horizon_s=horizon_s)
    return out
