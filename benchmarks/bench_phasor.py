"""Phasor line-current limits on the Caltech ACN: the LP's polygon against the exact SOC optimum.

    PYTHONPATH=. python benchmarks/bench_phasor.py [--sessions 80] [--seeds 3]

The site is ``examples/sites/caltech_acn.json`` (acnportal's ``caltech_acn``: 54 EVSEs at 208 V
line-to-line behind a 150 kVA delta-wye transformer), with synthetic workplace sessions
(arrivals 6-13 h, stays 2-6 h, 10-40 kWh, at most one EV per EVSE at a time) over 96 slots of
15 min; the transformer binds (54 EVSEs x 6.7 kW = 360 kW on 150 kVA) and about a fifth of the
energy asked for cannot be delivered. Per seed it solves the exact
second-order-cone problem (cvxpy + CLARABEL, benchmarks/soc_exact.py: maximum energy, the
LP's bounds) and reports, as energy below that optimum:

- ``polygon <loss>``: the LP with the inner polygon at 2-3 precisions (no minimum-current repair,
  so it is the same model as the exact one), its phasor rows and LP time, and violations of
  the exact limits (checked slot by slot: feasibility.check, kind ``phasor``);
- ``+repair``: the full plan at the default precision (minimum current 6/8 A repaired);
- ``per-branch``: the conservative linear bound of today (``sum |coefficient| I <= limit``,
  acnportal's ``linear=True``);
- ``no phasor rows``: the LP without the current limits (rows and time only: not feasible).

Columns: mean and worst energy below the exact optimum (%), median wall time of the plan
(``optimize``, end to end; the exact row: CLARABEL's solve time), rows (phasor rows of the
LP after dropping those that cannot bind; the ``no phasor rows`` line: all its rows), and
slot-limit violations of the exact constraint summed over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np

from benchmarks.soc_exact import exact_energy
from ems.optimizer.feasibility import check
from ems.optimizer.instance import snapshot_from_json
from ems.optimizer.plan import Options, optimize
from ems.optimizer.problem import compile_problem
from ems.optimizer.snapshot import CurrentLimit, SessionDemand, Snapshot

SITE = Path(__file__).parents[1] / "examples" / "sites" / "caltech_acn.json"
LOSSES = (0.02, 0.005, 0.001)


def caltech_day(sessions: int, seed: int) -> Snapshot:
    """The Caltech network with ``sessions`` workplace sessions (fewer if the EVSEs are full)."""
    site = snapshot_from_json(json.loads(SITE.read_text()))
    rng = np.random.default_rng(seed)
    free_at = {e.id: 0.0 for e in site.evses}
    out: list[SessionDemand] = []
    for _ in range(sessions * 20):
        if len(out) == sessions:
            break
        arrive = float(rng.uniform(6.0, 13.0))
        stay = float(rng.uniform(2.0, 6.0))
        free = [e for e, t in free_at.items() if t <= arrive]
        if not free:
            continue
        evse = free[int(rng.integers(len(free)))]
        leave = min(arrive + stay, 23.9)
        free_at[evse] = leave
        out.append(
            SessionDemand(
                f"s{len(out)}",
                evse,
                site.start + timedelta(hours=arrive),
                site.start + timedelta(hours=leave),
                round(float(rng.uniform(10000.0, 40000.0)), 1),
            )
        )
    return replace(site, sessions=tuple(out)).validate()


def per_branch(snap: Snapshot) -> Snapshot:
    """Today's conservative bound: every term's magnitude added on one axis (a linear row)."""
    linear = tuple(
        CurrentLimit(c.id, c.limit_a, tuple((e, abs(k), 0.0) for e, k, _ in c.terms)) for c in snap.current_limits
    )
    return replace(snap, current_limits=linear)


def phasor_rows(stats: dict[str, float | int | str], plain_rows: int) -> int:
    return int(stats["rows"]) - plain_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=80)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float, int, int]]] = {}

    def add(name: str, loss_pct: float, seconds: float, n_rows: int, violations: int) -> None:
        rows.setdefault(name, []).append((loss_pct, seconds, n_rows, violations))

    for seed in range(args.seeds):
        snap = caltech_day(args.sessions, seed)
        p = compile_problem(snap)
        exact = exact_energy(p)
        assert exact.status == "optimal", exact.status
        add("exact SOC (cvxpy/CLARABEL)", 0.0, exact.solve_s, 0, 0)
        plain = optimize(replace(snap, current_limits=()), Options(min_current=False))
        plain_rows = int(plain.stats["rows"])
        add("no phasor rows (infeasible)", float("nan"), float(plain.stats["total_s"]), plain_rows, -1)
        for loss in LOSSES:
            started = time.perf_counter()
            sch = optimize(snap, Options(min_current=False, current_limit_loss=loss))
            total = time.perf_counter() - started
            bad = [v for v in check(p, sch.power_w) if v.kind in ("phasor", "node_power", "node_phase")]
            gap = 100.0 * (1.0 - sch.total_energy_wh / 1000.0 / exact.energy_kwh)
            add(f"polygon {loss:g}", gap, total, phasor_rows(sch.stats, plain_rows), len(bad))
        full = optimize(snap)
        bad = [v for v in check(p, full.power_w) if v.kind in ("phasor", "node_power", "node_phase")]
        add(
            "polygon 0.005 +repair",
            100.0 * (1.0 - full.total_energy_wh / 1000.0 / exact.energy_kwh),
            float(full.stats["total_s"]),
            phasor_rows(full.stats, plain_rows),
            len(bad),
        )
        lin = optimize(per_branch(snap), Options(min_current=False))
        bad = [v for v in check(p, lin.power_w) if v.kind == "phasor"]
        add(
            "per-branch linear bound",
            100.0 * (1.0 - lin.total_energy_wh / 1000.0 / exact.energy_kwh),
            float(lin.stats["total_s"]),
            phasor_rows(lin.stats, plain_rows),
            len(bad),
        )
        asked = float(p.need_kwh.sum())
        print(
            f"seed {seed}: {len(snap.sessions)} sessions, {asked:.0f} kWh asked, "
            f"exact optimum {exact.energy_kwh:.1f} kWh, LP rows without phasors {plain_rows}",
            flush=True,
        )
    print(f"\n{'model':<30} {'below exact %':>14} {'worst %':>8} {'s (median)':>10} {'rows':>6} {'violations':>10}")
    for name, vals in rows.items():
        gaps = [v[0] for v in vals]
        mean = statistics.fmean(gaps)
        worst = max(gaps)
        secs = statistics.median(v[1] for v in vals)
        n_rows = int(statistics.median(v[2] for v in vals))
        viol = sum(v[3] for v in vals) if vals[0][3] >= 0 else "-"
        print(f"{name:<30} {mean:>14.3f} {worst:>8.3f} {secs:>10.3f} {n_rows:>6} {viol!s:>10}")


if __name__ == "__main__":
    main()
