"""Workplace-style charging days, shared by the benchmarks and the quality tests.

Arrivals 7-11 h, stays 4-10 h, requests 5-40 kWh (uniform), one EVSE per session on
feeders of 20 EVSEs; 60 % of EVSEs three-phase 16 A (11 kW), the rest single-phase 32 A
(7.4 kW) spread over L1/L2/L3; the site connection is well below the chargers' sum
(``site_share`` of it), feeders at 60 % of their chargers' sum with per-phase limits.
Deterministic for a given seed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ems.domain.units import ALL_PHASES
from ems.optimizer.snapshot import CircuitLimits, EvseLimits, SessionDemand, SiteLimits, Snapshot

DAY_START = datetime(2026, 1, 5, tzinfo=UTC)
FEEDER_SIZE = 20


def workplace_day(
    sessions: int,
    slots: int = 96,
    *,
    seed: int = 0,
    site_share: float = 0.25,
    feeders: bool = True,
    prices: bool = False,
) -> Snapshot:
    """A day of ``sessions`` sessions over ``slots`` slots (96: 15 min, 288: 5 min)."""
    rng = np.random.default_rng(seed)
    slot_s = 86400 // slots
    three = rng.random(sessions) < 0.6
    evses: list[EvseLimits] = []
    max_w = np.zeros(sessions)
    n_feeders = (sessions + FEEDER_SIZE - 1) // FEEDER_SIZE if feeders else 0
    for i in range(sessions):
        circuit = f"feeder-{i // FEEDER_SIZE}" if feeders else None
        if three[i]:
            rot = i % 3
            evses.append(EvseLimits(f"e{i}", circuit, 3, ALL_PHASES[rot:] + ALL_PHASES[:rot], 230.0, 6.0, 16.0))
            max_w[i] = 16 * 230 * 3
        else:
            evses.append(EvseLimits(f"e{i}", circuit, 1, (ALL_PHASES[i % 3],), 230.0, 6.0, 32.0))
            max_w[i] = 32 * 230
    circuits: list[CircuitLimits] = []
    for k in range(n_feeders):
        members = slice(k * FEEDER_SIZE, (k + 1) * FEEDER_SIZE)
        total_w = float(max_w[members].sum())
        circuits.append(
            CircuitLimits(
                f"feeder-{k}",
                None,
                (0.6 * total_w,) * slots,
                {q: round(0.6 * total_w / 230 / 3 * 1.15, 1) for q in ALL_PHASES},
            )
        )
    arrival_h = rng.uniform(7.0, 11.0, sessions)
    stay_h = rng.uniform(4.0, 10.0, sessions)
    energy_wh = rng.uniform(5000.0, 40000.0, sessions)
    demands = tuple(
        SessionDemand(
            id=f"s{i}",
            evse=f"e{i}",
            arrival=DAY_START + timedelta(hours=float(arrival_h[i])),
            departure=DAY_START + timedelta(hours=float(min(arrival_h[i] + stay_h[i], 23.9))),
            energy_wh=round(float(energy_wh[i]), 1),
        )
        for i in range(sessions)
    )
    price = None
    if prices:
        hours = (np.arange(slots) * slot_s / 3600.0) % 24
        price = tuple(float(v) for v in np.where((hours >= 17) & (hours < 21), 0.40, np.where(hours < 7, 0.18, 0.28)))
    return Snapshot(
        start=DAY_START,
        slot_s=slot_s,
        slots=slots,
        site=SiteLimits(capacity_w=(round(site_share * float(max_w.sum())),) * slots),
        circuits=tuple(circuits),
        evses=tuple(evses),
        sessions=demands,
        prices=price,
    )
