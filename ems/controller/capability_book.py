"""What each connected station can do with charging profiles, as the controller has learned it.

Asked at every boot (the OCPP version it connected with says how: ``capabilities.query``), and
updated by every answer to a profile (refusals in a row make a station one that will not take
profiles; one accepted profile makes it controllable again). The rules are ``capabilities.py``
(pure); this keeps their state per station and asks through ``ChargerControl``.
"""

from __future__ import annotations

import logging

from ems.controller import capabilities
from ems.controller.capabilities import Capabilities
from ems.controller.dispatch import Send
from ems.domain.commands import CommandResult
from ems.domain.station import OcppVersion
from ems.ports.control import ChargerControl

log = logging.getLogger(__name__)


class CapabilityBook:
    def __init__(self, control: ChargerControl | None) -> None:
        self.known: dict[str, Capabilities] = {}
        """Per station; a station not in it has the defaults."""
        self._control = control
        self._versions: dict[str, OcppVersion] = {}

    def connected(self, station_id: str, version: OcppVersion) -> None:
        self._versions[station_id] = version

    def booted(self, station_id: str) -> None:
        """A boot may mean new firmware: capabilities are learned again, refusals forgotten."""
        self.known[station_id] = Capabilities()

    async def learn(self, station_id: str) -> bool:
        """Ask a station what it can do with profiles; ``True`` when its answer was folded in."""
        version = self._versions.get(station_id)
        if self._control is None or version is None:
            return False
        try:
            result = await self._control.execute(station_id, capabilities.query(version))
        except Exception:
            # An adapter's bug must not end the controller; the station keeps the default capabilities.
            log.exception("controller: asking %s for its capabilities failed", station_id)
            return False
        caps = capabilities.learn(self.known.get(station_id, Capabilities()), version, result)
        self.known[station_id] = caps
        log.info("controller: %s capabilities %s", station_id, caps)
        return True

    def answered(self, send: Send, result: CommandResult) -> bool:
        """Fold a station's answer to a profile in; ``True`` when a re-plan is due (try again soon, or plan
        around a station that will not take profiles)."""
        before = self.known.get(send.station_id, Capabilities())
        after = capabilities.answered(before, send.command, result.status)
        self.known[send.station_id] = after
        if before.takes_profiles() and not after.takes_profiles():
            log.warning(
                "controller: %s will not take profiles (%s): planned as a fixed load at what it may apply",
                send.station_id,
                result.detail or result.status.value,
            )
        return after.refusals > before.refusals or before.takes_profiles() != after.takes_profiles()
