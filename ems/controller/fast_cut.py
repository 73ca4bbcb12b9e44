"""The first answer to a capacity drop, before the optimizer has re-planned: proportional cuts (pure).

When the capacity in force falls below what the stations may apply, every EVSE under a node
that is over gets a TxProfile that is its own bound scaled down by that node's worst ratio
of limit to load (the lowest over every instant, phase and node above it), rounded down to
0.1 A, and 0 A below the EVSE's minimum current. Together they bring every node within its
limits at every instant. A line row of a wired site (a phasor limit) is scaled the same way:
its exact worst case scales linearly with the bounds of the EVSEs on it. The optimizer's plan follows and replaces them.

Each is built from the EVSE's bound itself, segment by segment (the current and the number of
phases of each segment, scaled), so it is nowhere above the bound: a cut by construction. It
therefore needs no weighing (``Dispatcher.cuts``): on the way to the stations there is one
pass over the site's EVSEs and no composite is computed. Why it is a cut: the dispatcher's
TxProfile of an EVSE is the only TxProfile of its transaction in every world the belief
keeps (the new one replaces it, same id and stack level), so where the new profile is in
effect the station applies at most it; past its end the station applies its
TxDefaultProfile, which the bound already counts (the bound includes "no transaction").
A period that rises over the one before starts at the next whole second, one that falls at
the previous one, as the bound's own segments do (``step_down`` does the same).

The cuts are ordered by how much they lower what their EVSE may draw *now*, the largest
first: the send window (``sending.py``) then has the site under its new limit soonest.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from ems.controller.belief import Bound, EvseBelief
from ems.controller.budget import TOLERANCE_A, Budget, EvsePlace
from ems.controller.dispatch import Desired
from ems.controller.lines import worst_a
from ems.domain.commands import ChargingSchedulePeriod, ProfilePurpose, RateUnit, SetChargingLimit
from ems.domain.composite import Hardware

EvseKey = tuple[str, int]


def node_factors(budget: Budget, fixed: Budget | None = None) -> dict[str, float]:
    """Per node: the factor (<= 1) its load must be scaled by to be within its limits at every instant.

    ``fixed``: the part of the load that is not scaled (EVSEs without a session keep their default), on the
    same grid: only the rest is scaled, into the room the fixed part leaves."""
    out: dict[str, float] = {}
    for node, load in budget.load.items():
        cap = budget.cap[node]
        over = load > cap + budget.tol
        if not over.any():
            continue
        rigid = fixed.load[node] if fixed is not None else np.zeros_like(load)
        movable = load - rigid
        room = np.maximum(cap - rigid, 0.0)
        ratios = np.where(over, room / np.where(movable > 0, movable, 1.0), 1.0)
        out[node] = float(max(0.0, min(1.0, ratios.min())))
    # Line rows (phasor limits): the worst case scales linearly with the weights and is subadditive, so
    # scaling what may move by (limit - worst(fixed)) / worst(movable) brings the line within its limit.
    for row, load in budget.line_load.items():
        line_cap = budget.line_cap[row]
        worst = budget.line_worst_a(row)
        over = worst > line_cap + TOLERANCE_A
        if not over.any():
            continue
        rigid = fixed.line_load[row] if fixed is not None else np.zeros_like(load)
        room = np.maximum(line_cap - worst_a(rigid), 0.0)
        movable = worst_a(load - rigid)
        ratios = np.where(over, room / np.where(movable > 0, movable, 1.0), 1.0)
        out[row] = float(max(0.0, min(1.0, ratios.min())))
    return out


def proportional_cuts(
    budget: Budget,
    beliefs: Mapping[EvseKey, EvseBelief],
    places: Mapping[EvseKey, EvsePlace],
    sessions: Sequence[tuple[EvseKey, str, str, float]],
    now: datetime,
    horizon_s: int,
    profile_id_base: int,
    fixed: Budget | None = None,
) -> list[Desired]:
    """TxProfiles for the sessions ``(evse key, session id, transaction id, min current A)`` under nodes over,
    the one that lowers its EVSE's limit now the most first. An EVSE whose bound would not fall is left out.
    ``fixed``: the EVSEs ``budget`` counts that are not among ``sessions`` (see ``node_factors``)."""
    factors = node_factors(budget, fixed)
    if not factors:
        return []
    base = now.replace(microsecond=0)
    end = now + timedelta(seconds=horizon_s)
    duration_s = math.floor((end - base).total_seconds())
    ranked: list[tuple[float, int, Desired]] = []
    for key, session_id, tx_id, min_a in sessions:
        place = places.get(key)
        belief = beliefs.get(key)
        if place is None or belief is None:
            continue
        factor = min((factors.get(n, 1.0) for n in budget.constraints(place)), default=1.0)
        if factor >= 1.0:
            continue
        bound = belief.bound(now)
        periods = scaled_periods(bound, factor, min_a, belief.hw, now, end, base)
        if periods is None:
            continue
        command = SetChargingLimit(
            evse_id=key[1],
            profile_id=profile_id_base + key[1],
            purpose=ProfilePurpose.TX_PROFILE,
            stack_level=1,
            rate_unit=RateUnit.A,
            periods=periods,
            start_at=base,
            duration_s=duration_s,
            transaction_id=tx_id,
        )
        a_now, phases_now = bound.at(now)
        first = periods[0]
        drop_w = (min(a_now, belief.hw.max_current_a) * phases_now - first.limit * (first.number_phases or 1)) * (
            place.voltage_v
        )
        ranked.append((-drop_w, len(ranked), Desired(key[0], command, session_id)))
    ranked.sort()
    return [d for _, _, d in ranked]


def scaled_periods(
    bound: Bound, factor: float, min_a: float, hw: Hardware, now: datetime, end: datetime, base: datetime
) -> tuple[ChargingSchedulePeriod, ...] | None:
    """``bound`` from ``now`` until ``end`` scaled by ``factor`` as periods from ``base`` (a whole second at or
    before ``now``); ``None`` when that lowers nothing (the EVSE may draw nothing already)."""
    segments: list[tuple[datetime, float, int]] = []
    lowered = False
    first = max(0, bisect.bisect_right(bound.times, now) - 1)
    for i in range(first, len(bound.times)):
        t = now if i == first else bound.times[i]
        if t >= end:
            break
        a = min(bound.current_a[i], hw.max_current_a)
        amps = math.floor(a * factor * 10 + 1e-9) / 10  # down to the 0.1 A the wire carries
        if amps < min_a - 1e-6:
            amps = 0.0  # below the IEC 61851 minimum the EV cannot charge: pause explicitly
        lowered = lowered or amps < a - 1e-9
        segments.append((t, amps, max(1, min(bound.phases[i], hw.phases))))
    if not lowered:
        return None
    periods: list[ChargingSchedulePeriod] = []
    for t, amps, phases in segments:
        if not periods:
            periods.append(ChargingSchedulePeriod(start_offset_s=0, limit=amps, number_phases=phases))
            continue
        prev = periods[-1]
        prev_phases = prev.number_phases or 1
        if amps == prev.limit and (amps == 0 or phases == prev_phases):
            continue
        exact = (t - base).total_seconds()
        early, late = math.floor(exact + 1e-9), math.ceil(exact - 1e-9)
        rising = amps > prev.limit or (amps > 0 and phases > prev_phases)
        falling = amps < prev.limit or phases < prev_phases
        # Whole seconds on the wire: what rises starts late (ceil), what falls early (floor); a change that
        # does both (more A on fewer phases) holds the lower of each in between.
        if falling:
            low_phases = phases if not rising else min(phases, prev_phases)
            _append(periods, early, min(amps, prev.limit), low_phases)
        if rising:
            _append(periods, late, amps, phases)
    return tuple(periods)


def _append(periods: list[ChargingSchedulePeriod], offset: int, amps: float, phases: int) -> None:
    """Add a period; one starting at or before the last one's start merges into it, the lower in each respect."""
    last = periods[-1]
    last_phases = last.number_phases or 1
    if offset <= last.start_offset_s:
        periods[-1] = ChargingSchedulePeriod(
            start_offset_s=last.start_offset_s, limit=min(last.limit, amps), number_phases=min(last_phases, phases)
        )
    elif amps != last.limit or (amps > 0 and phases != last_phases):
        periods.append(ChargingSchedulePeriod(start_offset_s=offset, limit=amps, number_phases=phases))
