"""The controller's live view, read by the API and the dashboard."""

from __future__ import annotations

from typing import Protocol

from ems.domain.live import LiveSessionView, SitePlanView
from ems.ports.grid import SiteLoad


class SiteMonitor(SiteLoad, Protocol):
    """What the controller knows live, for the API and dashboard; never blocks."""

    def live_sessions(self, site_id: str) -> list[LiveSessionView]: ...

    def plan(self, site_id: str) -> SitePlanView | None: ...
