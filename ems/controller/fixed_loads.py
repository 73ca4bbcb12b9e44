"""Loads the plan does not control, at the most they may draw (pure).

The optimizer plans the sessions it controls within what is left of every node's limits
(``planning.reserve``). What it does not control still draws up to its bound (what the
station accepted, ``belief.py``): idle EVSEs (a car may plug in and get its
TxDefaultProfile), sessions on stations that are offline or will not take profiles (their
last accepted limit, or their maximum when nothing is known), and sessions left out of the
plan for contradictory data (``hygiene.py``), and sessions on EVSEs that have not accepted
any profile yet (just connected: planned from the next re-plan, once their fail-safe
default is in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from ems.controller.belief import EvseBelief
from ems.controller.budget import EvsePlace
from ems.controller.capabilities import Capabilities
from ems.controller.planning import evse_place
from ems.controller.state import LiveState

EvseKey = tuple[str, int]
Load = tuple[EvsePlace, float, float]
"""Where, A per phase, W."""


def _at_bound(belief: EvseBelief, place: EvsePlace, now: datetime) -> Load:
    bound = belief.bound(now)
    amps = max(bound.current_a)
    return place, amps, amps * place.voltage_v * min(max(bound.phases), len(place.phase_map))


def controlled(belief: EvseBelief | None) -> bool:
    """Has the EVSE accepted anything yet? Until it has, it may apply its maximum whatever is planned."""
    return belief is not None and () not in belief.worlds


def around_plan(
    site_id: str,
    state: LiveState,
    beliefs: Mapping[EvseKey, EvseBelief],
    capabilities: Mapping[str, Capabilities],
    online: Sequence[str],
    places: Mapping[EvseKey, EvsePlace],
    now: datetime,
) -> tuple[list[Load], frozenset[str]]:
    """The fixed loads, and the sessions left out of the plan because the controller cannot steer them."""
    sessions = state.active(site_id)
    exclude = frozenset(
        s.session_id
        for s in sessions
        if s.station_id not in online
        or not capabilities.get(s.station_id, Capabilities()).takes_profiles()
        or not controlled(beliefs.get((s.station_id, s.evse_id)))
    )
    planned = {(s.station_id, s.evse_id) for s in sessions if s.session_id not in exclude}
    fixed: list[Load] = []
    for key, place in places.items():
        if key not in planned:  # a planned EVSE's TxDefaultProfile goes to 0 A in the round's cuts
            fixed.append(_at_bound(beliefs[key], place, now))
    for s in sessions:
        if s.session_id in exclude and (s.station_id, s.evse_id) not in places:
            spec = state.evse_spec(s.station_id, s.evse_id)  # never seen: at its hardware maximum
            fixed.append((evse_place(state, s.station_id, s.evse_id), spec.max_current_a, spec.max_power_w))
    return fixed, exclude


def left_out(
    state: LiveState,
    beliefs: Mapping[EvseKey, EvseBelief],
    sessions: Mapping[str, str],
    places: Mapping[EvseKey, EvsePlace],
    now: datetime,
) -> list[Load]:
    """Sessions left out of the plan draw up to their EVSE's bound (unless another session there is planned)."""
    planned = {(s.station_id, s.evse_id) for s in state.sessions.values() if s.session_id not in sessions}
    out: list[Load] = []
    for sid in sessions:
        s = state.sessions.get(sid)
        if s is None or (s.station_id, s.evse_id) in planned:
            continue
        key = (s.station_id, s.evse_id)
        belief = beliefs.get(key)
        place = places.get(key) or evse_place(state, *key)
        if belief is None:
            spec = state.evse_spec(*key)
            out.append((place, spec.max_current_a, spec.max_power_w))
        else:
            out.append(_at_bound(belief, place, now))
    return out


def uncontrolled(state: LiveState, beliefs: Mapping[EvseKey, EvseBelief], sessions: Iterable[str]) -> bool:
    """Whether any of ``sessions`` runs on an EVSE that has not accepted a profile yet."""
    found = (state.sessions.get(sid) for sid in sessions)
    return any(s is not None and not controlled(beliefs.get((s.station_id, s.evse_id))) for s in found)
