"""Which of a site's EVSEs are under control now, and every profile the controller wants them to have.

``under_control`` gives every EVSE of an online station that takes profiles its belief (and syncs
the transactions running on them); ``desired`` lists the fail-safe ``TxDefaultProfile`` of each of
those EVSEs, then each planned session's ``TxProfile``; ``capacity_cuts`` the proportional cuts of a
capacity drop (``fast_cut.py``). Each is shaped to its station's capabilities. No I/O: the controller
sends them (``sending.py``), ordered by ``dispatch.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from ems.controller import capabilities
from ems.controller.budget import Budget, EvsePlace, Limits
from ems.controller.capabilities import Capabilities
from ems.controller.dispatch import Desired, Dispatcher, EvseKey
from ems.controller.fast_cut import proportional_cuts
from ems.controller.planning import TX_PROFILE_ID_BASE, PlanningSettings, evse_place, failsafe_profile, tx_profile
from ems.controller.state import LiveState
from ems.controller.stations import station_evses, sync_transactions
from ems.domain.composite import Hardware
from ems.domain.site import Site
from ems.optimizer.schedule import Schedule
from ems.ports.control import ChargerControl


def takes_profiles(known: Mapping[str, Capabilities], station_id: str) -> bool:
    """``False`` for a station that refuses profiles: planned around (until it boots again and is asked afresh)."""
    return known.get(station_id, Capabilities()).takes_profiles()


def under_control(
    site: Site,
    state: LiveState,
    dispatcher: Dispatcher,
    known: Mapping[str, Capabilities],
    control: ChargerControl | None,
) -> tuple[list[str], dict[EvseKey, EvsePlace]]:
    """The site's online stations (each EVSE with a belief, its transaction synced), and where EVSEs sit."""
    candidates = {s.id for s in site.stations} | set(state.stations)
    candidates |= {s.station_id for s in state.sessions.values()}
    online = sorted(
        sid for sid in candidates if state.site_of(sid).id == site.id and control is not None and control.is_online(sid)
    )
    for station_id in online:
        if not takes_profiles(known, station_id):
            continue
        for evse_id in station_evses(site, state, station_id):
            spec = state.evse_spec(station_id, evse_id)
            dispatcher.belief(station_id, evse_id, Hardware(spec.max_current_a, spec.phases, spec.voltage_v))
    sync_transactions(
        state, dispatcher.beliefs, {k[0] for k in dispatcher.beliefs if state.site_of(k[0]).id == site.id}
    )
    places = {key: evse_place(state, *key) for key in dispatcher.beliefs if state.site_of(key[0]).id == site.id}
    return online, places


def desired(
    site: Site,
    schedule: Schedule | None,
    online: list[str],
    state: LiveState,
    known: Mapping[str, Capabilities],
    planning: PlanningSettings,
) -> list[Desired]:
    """Every profile the plan wants installed: fail-safe defaults, then TxProfiles."""
    evse_count = sum(len(s.evses) for s in site.stations)
    out: list[Desired] = []
    busy = {(s.station_id, s.evse_id) for s in state.sessions.values()}
    for station_id in online:
        if not takes_profiles(known, station_id):
            continue
        for evse_id in station_evses(site, state, station_id):
            spec = state.evse_spec(station_id, evse_id)
            command = failsafe_profile(site, spec, evse_count, busy=(station_id, evse_id) in busy)
            caps = known.get(station_id, Capabilities())
            out.append(Desired(station_id, capabilities.shape(command, caps, spec.voltage_v, spec.phases)))
    if schedule is not None:
        for session in state.active(site.id):
            if session.station_id not in online:
                continue
            spec = state.evse_spec(session.station_id, session.evse_id)
            tx = tx_profile(schedule, session, spec, planning)
            if tx is not None and tx.periods:
                caps = known.get(session.station_id, Capabilities())
                tx = capabilities.shape(tx, caps, spec.voltage_v, spec.phases)
                out.append(Desired(session.station_id, tx, session.session_id))
    return out


def capacity_cuts(
    site: Site,
    state: LiveState,
    dispatcher: Dispatcher,
    known: Mapping[str, Capabilities],
    online: list[str],
    places: Mapping[EvseKey, EvsePlace],
    limits: Limits,
    now: datetime,
    planning: PlanningSettings,
) -> list[Desired]:
    """Every EVSE under a node that is over ``limits`` cut, in proportion (no snapshot of the sessions: only
    the tree's limits), each cut shaped to its station; empty when nothing is over."""
    spec = state.evse_spec
    controlled = {sid for sid in online if takes_profiles(known, sid)}
    sessions = [
        ((s.station_id, s.evse_id), s.session_id, s.transaction_id, spec(s.station_id, s.evse_id).min_current_a)
        for s in state.active(site.id)
        if s.station_id in controlled and s.transaction_id is not None
    ]
    budget = dispatcher.budget(limits, places, now)
    scaled = {key for key, *_ in sessions}
    fixed = Budget(limits, budget.grid)  # idle EVSEs and the like keep what they may draw: scale the rest
    for key, belief in dispatcher.beliefs.items():
        if key in places and key not in scaled:
            fixed.book(key, belief.bound(now), places[key])
    cuts = proportional_cuts(
        budget,
        dispatcher.beliefs,
        places,
        sessions,
        now,
        planning.profile_horizon_s,
        TX_PROFILE_ID_BASE,
        fixed,
    )
    out = []
    for d in cuts:  # as each station takes profiles (W, stack level, periods): each only ever lower
        evse = spec(d.station_id, d.command.evse_id)
        caps = known.get(d.station_id, Capabilities())
        out.append(replace(d, command=capabilities.shape(d.command, caps, evse.voltage_v, evse.phases)))
    return out
