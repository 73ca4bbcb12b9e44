"""Which EVSEs a station has and which transaction runs on each, for the beliefs (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ems.controller.belief import EvseBelief
from ems.controller.state import LiveState
from ems.domain.site import Site


def station_evses(site: Site, state: LiveState, station_id: str) -> list[int]:
    """From the site file; a station not in it: the EVSEs it reported or charges on (at least EVSE 1)."""
    spec = site.station(station_id)
    if spec is not None:
        return [e.evse_id for e in spec.evses]
    live = state.stations.get(station_id)
    ids = {e for e in (live.statuses if live is not None else {}) if e > 0}
    ids |= {s.evse_id for s in state.sessions.values() if s.station_id == station_id}
    return sorted(ids or {1})


def sync_transactions(state: LiveState, beliefs: Mapping[tuple[str, int], EvseBelief], station_id: str) -> None:
    """Tell the beliefs which transaction runs on each EVSE of ``station_id`` (its TxProfile applies to it)."""
    running: dict[int, tuple[str, datetime]] = {}
    for s in sorted(state.sessions.values(), key=lambda x: x.started_at):
        if s.station_id == station_id and s.transaction_id is not None:
            running[s.evse_id] = (s.transaction_id, s.started_at)
    for (sid, evse_id), belief in beliefs.items():
        if sid == station_id:
            tx = running.get(evse_id)
            belief.transaction(*(tx if tx is not None else (None, None)))
