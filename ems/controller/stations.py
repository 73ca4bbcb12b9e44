"""Which EVSEs a station has and which transaction runs on each, for the beliefs (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from ems.controller.belief import EvseBelief
from ems.controller.state import LiveState
from ems.domain.site import Site


def station_evses(site: Site, state: LiveState, station_id: str) -> list[int]:
    """From the site file; a station not in it: the EVSEs it reported or charges on (at least EVSE 1)."""
    # The live state's index (one look-up) when it places the station in this site, as it always does here.
    spec = state.station_spec(station_id) if state.site_of(station_id).id == site.id else site.station(station_id)
    if spec is not None:
        return [e.evse_id for e in spec.evses]
    live = state.stations.get(station_id)
    ids = {e for e in (live.statuses if live is not None else {}) if e > 0}
    ids |= {s.evse_id for s in state.sessions.values() if s.station_id == station_id}
    return sorted(ids or {1})


def sync_transactions(
    state: LiveState, beliefs: Mapping[tuple[str, int], EvseBelief], station_ids: str | Collection[str]
) -> None:
    """Tell the beliefs which transaction runs on each EVSE of the stations (its TxProfile applies to it).

    One pass over the sessions and the beliefs, however many stations: this runs on the way
    to a capacity drop's cuts."""
    wanted = {station_ids} if isinstance(station_ids, str) else set(station_ids)
    running: dict[tuple[str, int], tuple[str, datetime]] = {}
    for s in state.sessions.values():
        if s.station_id not in wanted or s.transaction_id is None:
            continue
        key = (s.station_id, s.evse_id)
        seen = running.get(key)
        if seen is None or s.started_at >= seen[1]:  # two on one EVSE: the one started last runs
            running[key] = (s.transaction_id, s.started_at)
    for key, belief in beliefs.items():
        if key[0] in wanted:
            tx = running.get(key)
            belief.transaction(*(tx if tx is not None else (None, None)))
