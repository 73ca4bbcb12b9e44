"""The dispatch budget on a line-to-line site against the same site wired line-to-neutral (the floor).

    PYTHONPATH=. python benchmarks/bench_budget_lines.py [--evses 1000] [--repeat 5]

N single-phase EVSEs in pods of 10 (a pod's three lines limited) under one circuit. Wired: every
EVSE between two lines (208 V, pairs in rotation) and the circuit the secondary of a 480/120 V
delta-wye transformer (its primary lines limited too): each EVSE loads ~7 phasor line rows,
checked at their exact worst case (``ems.controller.lines``). Floor: the same tree with each
EVSE on one phase (230 V), per-phase sums. Timed: a fresh ``Budget`` over 4 instants, every
EVSE booked, ``fits`` of a raise for every EVSE, ``violations()`` — what one dispatch wave
does. Best of ``--repeat``; reported as ms and as a ratio over the floor.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from ems.controller.belief import Bound
from ems.controller.budget import Budget
from ems.controller.planning import PlanningSettings, evse_place, limits_now
from ems.controller.state import LiveState
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, TransformerSpec
from ems.domain.units import ALL_PHASES

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
L1, L2, L3 = ALL_PHASES
PAIRS = [(L1, L2), (L2, L3), (L3, L1)]


def site(wired: bool, n: int) -> Site:
    transformer = TransformerSpec("delta-wye", 4.0, dict.fromkeys(ALL_PHASES, 2000.0)) if wired else None
    circuits = [Circuit("xf", phase_limits_a=dict.fromkeys(ALL_PHASES, 4000.0), transformer=transformer)]
    circuits += [
        Circuit(f"pod{i}", parent_id="xf", phase_limits_a=dict.fromkeys(ALL_PHASES, 200.0)) for i in range(n // 10 + 1)
    ]
    stations = []
    for i in range(n):
        a, b = PAIRS[i % 3]
        e = EvseSpec(1, phases=1, phase_map=(a,), voltage_v=208.0 if wired else 230.0, lines=(a, b) if wired else None)
        stations.append(StationSpec(f"S{i}", circuit_id=f"pod{i // 10}", evses=(e,)))
    return Site(id="s", circuits=tuple(circuits), stations=tuple(stations))


def run(wired: bool, n: int, repeat: int) -> float:
    s = site(wired, n)
    state = LiveState([s])
    limits = limits_now(s, T0, PlanningSettings())
    places = {(f"S{i}", 1): evse_place(state, f"S{i}", 1) for i in range(n)}
    grid = {T0 + timedelta(seconds=300 * k) for k in range(4)}
    bound = Bound((T0, T0 + timedelta(seconds=300)), (10.0, 12.0), (1, 1))
    raise_ = Bound((T0,), (13.0,), (1,))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        budget = Budget(limits, grid)
        for k, p in places.items():
            budget.book(k, bound, p)
        for k, p in places.items():
            budget.fits(k, raise_, p)
        budget.violations()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evses", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    floor = run(False, args.evses, args.repeat)
    wired = run(True, args.evses, args.repeat)
    print(
        f"{args.evses} EVSEs: per-phase floor {floor * 1000:.0f} ms, "
        f"line-to-line {wired * 1000:.0f} ms, ratio {wired / floor:.2f}"
    )


if __name__ == "__main__":
    main()
