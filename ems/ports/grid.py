"""The capacity-signal door and the live site load: the ports the grid side talks through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ems.domain.capacity import (
    CapacityInterval,
    CapacitySignal,
    SignalKind,
    SignalOutcome,
    SignalSource,
    SiteLoadReading,
)


class SiteLoad(Protocol):
    """Live site state, read by the grid status publisher; implemented by the controller."""

    def site_load(self, site_id: str) -> SiteLoadReading:
        """Measured load of ``site_id`` (an empty reading when nothing is known); never blocks."""
        ...


class CapacitySignals(Protocol):
    """The one door for capacity signals, used by the MQTT adapter, the API and the simulator."""

    def site_ids(self) -> list[str]: ...

    async def submit(
        self,
        raw: bytes | str | Mapping[str, Any],
        *,
        site_id: str,
        source: SignalSource,
        kind: SignalKind | None = None,
        circuit_id: str | None = None,
        fresh: bool = True,
    ) -> SignalOutcome:
        """Validate, apply, persist, publish events; never raises for a bad signal (see ``accepted``)."""
        ...

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]:
        """The effective capacity from now over ``horizon_s``; raises ``NotFound`` for an unknown target."""
        ...

    def in_force(self, site_id: str, circuit_id: str | None = None) -> CapacityInterval:
        """What is in force now, until its next known change (``OPEN_END``: none known)."""
        ...

    def latest(self, site_id: str, circuit_id: str | None, kind: SignalKind) -> CapacitySignal | None:
        """The forecast or immediate limit in force for a target (expired blocks dropped)."""
        ...

    def status(self, site_id: str) -> Mapping[str, Any]:
        """The site status message body: measured load, limit in force, headroom, stale flag."""
        ...
