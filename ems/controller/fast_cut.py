"""The first answer to a capacity drop, before the optimizer has re-planned: proportional cuts (pure).

When the capacity in force falls below what the stations may apply, every EVSE under a node
that is over gets a TxProfile that is its own bound scaled down by that node's worst ratio
of limit to load (the lowest over every instant, phase and node above it), rounded down to
0.1 A, and 0 A below the EVSE's minimum current. Each is a cut (nowhere above the bound),
so it goes out at once; together they bring every node within its limits at every instant.
The optimizer's plan follows in the same re-plan and replaces them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from ems.controller.belief import EvseBelief
from ems.controller.budget import Budget, EvsePlace
from ems.controller.dispatch import Desired, step_down
from ems.domain.commands import ChargingSchedulePeriod, ProfilePurpose, RateUnit, SetChargingLimit

EvseKey = tuple[str, int]


def node_factors(budget: Budget) -> dict[str, float]:
    """Per node: the factor (<= 1) its load must be scaled by to be within its limits at every instant."""
    out: dict[str, float] = {}
    for node, load in budget.load.items():
        cap = budget.cap[node]
        over = load > cap + budget.tol
        if not over.any():
            continue
        ratios = np.where(over, cap / np.where(load > 0, load, 1.0), 1.0)
        out[node] = float(max(0.0, min(1.0, ratios.min())))
    return out


def proportional_cuts(
    budget: Budget,
    beliefs: Mapping[EvseKey, EvseBelief],
    places: Mapping[EvseKey, EvsePlace],
    sessions: Sequence[tuple[EvseKey, str, str, float]],
    now: datetime,
    horizon_s: int,
    profile_id_base: int,
) -> list[Desired]:
    """TxProfiles for the sessions ``(evse key, session id, transaction id, min current A)`` under nodes over."""
    factors = node_factors(budget)
    if not factors:
        return []
    out: list[Desired] = []
    for key, session_id, tx_id, min_a in sessions:
        place = places.get(key)
        belief = beliefs.get(key)
        if place is None or belief is None:
            continue
        factor = min((factors.get(n, 1.0) for n in budget.chain(place)), default=1.0)
        if factor >= 1.0:
            continue
        ceiling = SetChargingLimit(
            evse_id=key[1],
            profile_id=profile_id_base + key[1],
            purpose=ProfilePurpose.TX_PROFILE,
            stack_level=1,
            rate_unit=RateUnit.A,
            periods=(ChargingSchedulePeriod(start_offset_s=0, limit=1000.0, number_phases=belief.hw.phases),),
            start_at=now,
            duration_s=horizon_s,
            transaction_id=tx_id,
        )
        copy = step_down(ceiling, belief.bound(now), belief.hw, now, 24)
        if copy is None:
            continue
        periods: list[ChargingSchedulePeriod] = []
        for p in copy.periods:
            amps = math.floor(p.limit * factor * 10 + 1e-9) / 10
            if amps < min_a - 1e-6:
                amps = 0.0
            if periods and periods[-1].limit == amps:
                continue
            periods.append(replace(p, limit=amps))
        out.append(Desired(key[0], replace(copy, periods=tuple(periods)), session_id))
    return out
