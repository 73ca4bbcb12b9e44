"""From live state to an optimizer snapshot, and from a schedule to charging profiles. Pure.

Snapshot: the site's circuit tree and EVSEs (site file), every active session with what
it has had and what it still wants, and the capacity in force per slot (the grid
operator's timeline; the lowest bound within a slot counts, so a limit starting mid-slot
is honoured for the whole slot). Sessions without a departure are assumed to stay
``default_stay_s``; without an energy request they want ``default_request_wh`` (as much
as the car takes): the optimizer then shares fairly rather than guessing. When the site has
history (``ems.optimizer.estimates``), the card's or the site's past sessions replace these
defaults: a robust early departure and the median energy, per weekday when there are enough.

Profiles (the fail-safe design): each charging session gets a ``TxProfile`` covering only
the next ``profile_horizon_s``; a station whose link drops follows it to its end and then
falls back to the ``TxDefaultProfile`` fail-safe limit the controller installs at connect.
When and in what order they are sent is ``dispatch.py``'s business (cuts first, raises once
they fit, refreshed ``refresh_s`` after they were sent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ems.controller import lines
from ems.controller.budget import SITE, EvsePlace, Limits, NodeLimits
from ems.controller.observed import Draw
from ems.controller.state import LiveSession, LiveState
from ems.domain.capacity import CapacityInterval
from ems.domain.commands import ChargingSchedulePeriod, ProfilePurpose, RateUnit, SetChargingLimit
from ems.domain.session import ChargingSession
from ems.domain.site import EvseSpec, Site
from ems.domain.units import Phase, current_a_from_power_w
from ems.optimizer.estimates import Estimate, History, Source, local_weekday, past_session
from ems.optimizer.schedule import Schedule
from ems.optimizer.snapshot import (
    SITE_NODE_ID,
    CircuitLimits,
    CurrentLimit,
    EvseLimits,
    SessionDemand,
    SiteLimits,
    Snapshot,
)

TX_PROFILE_ID_BASE = 1000
"""Profile ids: TxProfile of EVSE n is 1000 + n (re-sending replaces it); fail-safe default 900 + n."""
FAILSAFE_PROFILE_ID_BASE = 900


@dataclass(frozen=True, slots=True)
class PlanningSettings:
    slot_s: int = 300
    horizon_slots: int = 96
    """8 h of 5-minute slots: a working day's departures are inside the horizon."""
    default_stay_s: float = 8 * 3600
    default_request_wh: float = 80_000
    profile_horizon_s: int = 900
    refresh_s: float = 300
    deadband_a: float = 1.0
    min_interval_s: float = 10
    solve_time_limit_s: float = 2.0
    """A re-plan at 500 sessions takes tens of ms; 2 s leaves room on a busy machine."""
    history_days: int = 56
    """Finished sessions of the last 8 weeks feed the departure and energy estimates."""
    history_refresh_s: float = 3600.0
    estimate_headroom_wh: float = 2_000.0
    """A session planned on an estimated energy that reached it is planned this much further (a car that
    wanted more than its median keeps charging; one that is full stops drawing)."""


def evse_key(station_id: str, evse_id: int) -> str:
    return f"{station_id}/{evse_id}"


def slot_capacity(
    intervals: Sequence[CapacityInterval], start: datetime, slot_s: int, slots: int
) -> tuple[float, ...] | None:
    """Lowest power bound in force during each slot; ``None`` when no interval bounds power."""
    if not any(i.capacity_w is not None for i in intervals):
        return None
    out: list[float] = []
    for t in range(slots):
        a = start + timedelta(seconds=slot_s * t)
        b = a + timedelta(seconds=slot_s)
        bounds = [i.capacity_w for i in intervals if i.capacity_w is not None and i.start < b and i.end > a]
        out.append(max(0.0, min(bounds)) if bounds else float("inf"))
    finite = [v for v in out if v != float("inf")]
    ceiling = max(finite) if finite else 0.0
    # A slot with no bound (past the end of the timeline) keeps the last known bound: never "unlimited".
    return tuple(v if v != float("inf") else ceiling for v in out)


def phase_limits(intervals: Sequence[CapacityInterval]) -> dict[Phase, float]:
    """Per-phase A limits: the lowest over the horizon (phase limits are not per slot)."""
    out: dict[Phase, float] = {}
    for i in intervals:
        for phase, amps in i.phase_limits_a.items():
            out[phase] = min(out.get(phase, amps), amps)
    return out


def build_snapshot(
    site: Site,
    state: LiveState,
    now: datetime,
    settings: PlanningSettings,
    capacity: Mapping[str | None, Sequence[CapacityInterval]] | None = None,
    exclude: frozenset[str] = frozenset(),
    draws: Mapping[str, Draw] | None = None,
    history: History | None = None,
) -> Snapshot:
    """The optimizer's view of ``site`` at ``now``. ``capacity`` maps circuit id (``None``: site) to its timeline.

    Sessions in ``exclude`` are left out (the controller plans around them as fixed loads).
    ``draws`` (``observed.draws``): what each car was seen to take; sessions not in it are
    planned at their EVSE's maximum. ``history``: the site's past sessions, for the departure and energy
    of sessions whose EV and driver said nothing (``ems.optimizer.estimates``); ``None``: the defaults."""
    site_limits, circuits = _tree(site, now, settings, capacity)
    current_limits: tuple[CurrentLimit, ...] = ()
    sessions = [s for s in state.active(site.id) if s.session_id not in exclude]
    evses: dict[str, EvseLimits] = {}
    demands: list[SessionDemand] = []
    for s in sorted(sessions, key=lambda x: x.session_id):
        spec = state.evse_spec(s.station_id, s.evse_id)
        key = evse_key(s.station_id, s.evse_id)
        evses[key] = _evse_limits(key, spec, state.circuit_of(s.station_id))
        demand = _demand(s, key, now, settings, _estimate(s, site, history))
        demands.append(_with_draw(demand, (draws or {}).get(s.session_id)))
    wiring = lines.wiring_of(site)
    if wiring is not None:
        site_limits, circuits, current_limits = lines.compile_snapshot_limits(
            wiring, site_limits, circuits, list(evses.values())
        )
    return Snapshot(
        start=now,
        slot_s=settings.slot_s,
        slots=settings.horizon_slots,
        site=site_limits,
        circuits=circuits,
        evses=tuple(evses.values()),
        sessions=tuple(demands),
        current_limits=current_limits,
    )


def _tree(
    site: Site,
    now: datetime,
    settings: PlanningSettings,
    capacity: Mapping[str | None, Sequence[CapacityInterval]] | None,
) -> tuple[SiteLimits, tuple[CircuitLimits, ...]]:
    """The limits of the site and of each circuit in force per slot from ``now``."""
    capacity = capacity or {}
    start, slots, slot_s = now, settings.horizon_slots, settings.slot_s
    site_iv = capacity.get(None, ())
    site_cap = slot_capacity(site_iv, start, slot_s, slots)
    if site_cap is None and site.capacity_w is not None:
        site_cap = (site.capacity_w,) * slots
    site_phase = {p: a for p, a in site.phase_limits_a.items()}
    for p, a in phase_limits(site_iv).items():
        site_phase[p] = min(site_phase.get(p, a), a)
    circuits = tuple(
        CircuitLimits(
            id=c.id,
            parent=c.parent_id,
            capacity_w=slot_capacity(capacity.get(c.id, ()), start, slot_s, slots)
            or ((c.capacity_w,) * slots if c.capacity_w is not None else None),
            phase_limits_a=dict(c.phase_limits_a),
        )
        for c in site.circuits
    )
    return SiteLimits(capacity_w=site_cap, phase_limits_a=site_phase), circuits


def limits_now(
    site: Site,
    now: datetime,
    settings: PlanningSettings,
    capacity: Mapping[str | None, Sequence[CapacityInterval]] | None = None,
) -> Limits:
    """The limits in force per node from ``now`` (what ``limits_of(build_snapshot(...))`` gives), without
    the sessions: what a capacity drop's cuts are weighed against, before any snapshot is built."""
    site_limits, circuits = _tree(site, now, settings, capacity)
    return _limits(now, settings.slot_s, site_limits, circuits, lines.wiring_of(site))


def _evse_limits(key: str, spec: EvseSpec, circuit: str | None) -> EvseLimits:
    return lines.evse_limits(key, spec, circuit)


def site_histories(finished: Sequence[ChargingSession], sites: Sequence[Site], state: LiveState) -> dict[str, History]:
    """Per site, the estimates (departure, energy) from its finished sessions; a site with none: an empty one."""
    by_site: dict[str, list[ChargingSession]] = {}
    for session in finished:
        by_site.setdefault(state.site_of(session.station_id).id, []).append(session)
    return {
        site.id: History(
            past_session(s.id_tag, s.started_at, s.stopped_at, s.energy_wh, site.timezone)
            for s in by_site.get(site.id, ())
            if s.stopped_at is not None
        )
        for site in sites
    }


def _estimate(s: LiveSession, site: Site, history: History | None) -> Estimate | None:
    """What the site's history says of ``s``, when it is needed (no departure or no energy from the EV or
    the driver) and rests on past sessions (``None``: the settings' defaults apply)."""
    if history is None or (s.departure_at is not None and s.energy_requested_wh is not None):
        return None
    found = history.estimate(s.id_tag, local_weekday(s.started_at, site.timezone))
    return None if found.source is Source.DEFAULT else found


def _demand(
    s: LiveSession, evse: str, now: datetime, settings: PlanningSettings, estimate: Estimate | None = None
) -> SessionDemand:
    stay_s = estimate.stay_s if estimate is not None else settings.default_stay_s
    departure = s.departure_at or s.started_at + timedelta(seconds=stay_s)
    if departure <= now + timedelta(seconds=settings.slot_s):
        departure = now + timedelta(hours=1)  # overstaying: keep serving it for the next hour
    if s.energy_requested_wh is not None:
        requested = s.energy_requested_wh
    elif estimate is not None:
        # A guess, not a request: a car past it that still draws is offered more, ``estimate_headroom_wh`` ahead.
        requested = max(estimate.energy_wh, s.delivered_wh + settings.estimate_headroom_wh)
    else:
        requested = settings.default_request_wh
    return SessionDemand(
        id=s.session_id,
        evse=evse,
        arrival=min(s.started_at, now),
        departure=departure,
        energy_wh=max(requested, s.delivered_wh),
        delivered_wh=s.delivered_wh,
        max_w=s.ev_max_power_w,
    )


# ------------------------------------------------------------------ profiles


def tx_profile(
    schedule: Schedule, session: LiveSession, spec: EvseSpec, settings: PlanningSettings
) -> SetChargingLimit | None:
    """The session's next ``profile_horizon_s`` as a TxProfile in A per phase (what 1.6 chargers all accept)."""
    if session.session_id not in schedule.session_ids or session.transaction_id is None:
        return None
    plan = schedule.session(session.session_id)
    phases = max(1, len(plan.phases))
    slots = max(1, min(len(plan.power_w), -(-settings.profile_horizon_s // schedule.slot_s)))
    periods: list[ChargingSchedulePeriod] = []
    for t in range(slots):
        # Round down to 0.1 A (the usual charger resolution): rounding up could push a circuit over its limit.
        amps = math.floor(current_a_from_power_w(plan.power_w[t], spec.voltage_v, phases) * 10 + 1e-9) / 10
        if amps < spec.min_current_a - 1e-6:
            amps = 0.0  # below the IEC 61851 minimum the EV cannot charge: pause explicitly
        if periods and periods[-1].limit == amps:
            continue
        periods.append(ChargingSchedulePeriod(start_offset_s=t * schedule.slot_s, limit=amps, number_phases=phases))
    return SetChargingLimit(
        evse_id=session.evse_id,
        profile_id=TX_PROFILE_ID_BASE + session.evse_id,
        purpose=ProfilePurpose.TX_PROFILE,
        stack_level=1,
        rate_unit=RateUnit.A,
        periods=tuple(periods),
        start_at=schedule.start,
        duration_s=slots * schedule.slot_s,
        transaction_id=session.transaction_id,
    )


def failsafe_profile(site: Site, spec: EvseSpec, evse_count: int, *, busy: bool = False) -> SetChargingLimit:
    """TxDefaultProfile: what the EVSE applies without a TxProfile (a car that just plugged in, a link lost
    past its TxProfile's end). An idle EVSE gets its share of the site's fail-safe capacity (0 A when that
    is below its minimum current, or when no fail-safe capacity is set); an EVSE with a session gets 0 A, so
    that its default never adds to what its TxProfile allows (the car pauses if the link stays down past
    the TxProfile's end; a next car waits for its plan)."""
    amps = 0.0
    if site.failsafe_capacity_w is not None and not busy:
        share_w = site.failsafe_capacity_w / max(1, evse_count)
        amps = min(spec.max_current_a, current_a_from_power_w(share_w, spec.voltage_v, spec.phases))
        amps = math.floor(amps * 10 + 1e-9) / 10 if amps >= spec.min_current_a else 0.0
    return SetChargingLimit(
        evse_id=spec.evse_id,
        profile_id=FAILSAFE_PROFILE_ID_BASE + spec.evse_id,
        purpose=ProfilePurpose.TX_DEFAULT_PROFILE,
        stack_level=0,
        rate_unit=RateUnit.A,
        periods=(ChargingSchedulePeriod(start_offset_s=0, limit=amps, number_phases=spec.phases),),
    )


def limits_of(snapshot: Snapshot) -> Limits:
    """The limits in force per node of the circuit tree, as the optimizer saw them (its W and per-phase rows;
    without its phasor rows: the dispatch budget of a wired site is :func:`limits_now`)."""
    return _limits(snapshot.start, snapshot.slot_s, snapshot.site, snapshot.circuits)


def _limits(
    start: datetime,
    slot_s: int,
    site: SiteLimits,
    circuits: Sequence[CircuitLimits],
    wiring: lines.Wiring | None = None,
) -> Limits:
    """``site`` and ``circuits`` with their phase limits as the site file says; on a wired site the phasor
    nodes' phase limits become line rows."""
    line_limits: dict[str, float] = {}
    if wiring is not None:
        line_limits = wiring.row_limits(site, circuits)
        site = site if SITE_NODE_ID not in wiring.phasor_nodes else replace(site, phase_limits_a={})
        circuits = [replace(c, phase_limits_a={}) if c.id in wiring.phasor_nodes else c for c in circuits]
    capacity = site.capacity_w
    if capacity is not None and (site.base_load_w is not None or site.pv_w is not None):
        base = site.base_load_w or (0.0,) * len(capacity)
        pv = site.pv_w or (0.0,) * len(capacity)
        capacity = tuple(c - b + p for c, b, p in zip(capacity, base, pv, strict=True))
    nodes = [NodeLimits(SITE, None, capacity, dict(site.phase_limits_a))]
    nodes.extend(
        NodeLimits(c.id, c.parent if c.parent is not None else SITE, c.capacity_w, dict(c.phase_limits_a))
        for c in circuits
    )
    return Limits(start, slot_s, tuple(nodes), wiring, line_limits)


def evse_place(state: LiveState, station_id: str, evse_id: int) -> EvsePlace:
    spec = state.evse_spec(station_id, evse_id)
    return EvsePlace(state.circuit_of(station_id), spec.phase_map[: spec.phases], spec.voltage_v, spec.lines)


def reserve(
    snapshot: Snapshot, fixed: Sequence[tuple[EvsePlace, float, float]], wiring: lines.Wiring | None = None
) -> Snapshot:
    """``snapshot`` with room kept for loads the plan does not control: ``(place, current_a, power_w)`` each.

    Idle EVSEs (a car may plug in and draw its TxDefaultProfile), sessions left out of the plan
    and stations that refuse profiles draw up to their bound; the optimizer plans the rest
    within what is left, per node (W) and per phase (A). On a wired site each line limit is
    lowered by the fixed loads' worst case on that line (``wiring``: ``lines.wiring_of(site)``)."""
    if not fixed:
        return snapshot
    if wiring is not None and snapshot.current_limits:
        weights = lines.fixed_weights(wiring, [(p.circuit, p.phase_map, p.lines, a) for p, a, _ in fixed])
        snapshot = replace(snapshot, current_limits=lines.fixed_reserve(snapshot.current_limits, weights))
    nodes = limits_of(snapshot)
    budget_nodes = {n.id: n for n in nodes.nodes}
    watts: dict[str, float] = {}
    amps: dict[str, dict[Phase, float]] = {}
    for place, current_a, power_w in fixed:
        node: str | None = place.circuit if place.circuit in budget_nodes else SITE
        seen: set[str] = set()
        while node is not None and node in budget_nodes and node not in seen:
            seen.add(node)
            watts[node] = watts.get(node, 0.0) + power_w
            per_phase = amps.setdefault(node, {})
            for p in place.phase_map:
                per_phase[p] = per_phase.get(p, 0.0) + current_a
            node = budget_nodes[node].parent

    def cut_w(values: tuple[float, ...] | None, node: str) -> tuple[float, ...] | None:
        if values is None:
            return None
        return tuple(max(0.0, v - watts.get(node, 0.0)) for v in values)

    def cut_a(limits: Mapping[Phase, float], node: str) -> dict[Phase, float]:
        return {p: max(0.0, a - amps.get(node, {}).get(p, 0.0)) for p, a in limits.items()}

    site = replace(
        snapshot.site,
        capacity_w=cut_w(snapshot.site.capacity_w, SITE),
        phase_limits_a=cut_a(snapshot.site.phase_limits_a, SITE),
    )
    circuits = tuple(
        replace(c, capacity_w=cut_w(c.capacity_w, c.id), phase_limits_a=cut_a(c.phase_limits_a, c.id))
        for c in snapshot.circuits
    )
    return replace(snapshot, site=site, circuits=circuits)


def _with_draw(d: SessionDemand, draw: Draw | None) -> SessionDemand:
    if draw is None:
        return d
    return replace(d, observed_a=draw.observed_a, observed_phases=draw.observed_phases, allotted_a=draw.allotted_a)
