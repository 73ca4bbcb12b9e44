"""Schedule invariants, checked from first principles (plain loops over the snapshot).

Deliberately independent of ems.optimizer.problem / feasibility, so a bug there cannot
hide a broken schedule.
"""

from __future__ import annotations

import cmath
import math

from ems.optimizer.schedule import Schedule
from ems.optimizer.snapshot import Snapshot

TOL_W = 0.01
"""10 mW: the LP works in kW to ~1e-7 kW; anything above this is a real excess."""
TOL_A = 1e-4


def assert_invariants(snap: Snapshot, sch: Schedule, *, respects_limits: bool = True) -> None:
    slot_h = snap.slot_s / 3600.0
    evses = {e.id: e for e in snap.evses}
    parents = {c.id: c.parent for c in snap.circuits}
    assert sch.power_w.shape == (len(snap.sessions), snap.slots)
    assert sch.session_ids == tuple(s.id for s in snap.sessions)
    loads: dict[str, list[float]] = {"site": [0.0] * snap.slots}
    amps: dict[tuple[str, str], list[float]] = {}
    for c in snap.circuits:
        loads[c.id] = [0.0] * snap.slots
    for i, s in enumerate(snap.sessions):
        e = evses[s.evse]
        phases = s.phases or e.phases
        own_w = min(e.max_a * e.voltage_v * phases, s.max_w if s.max_w is not None else math.inf)
        min_w = min(e.min_a * e.voltage_v * phases, own_w)
        need_wh = max(s.energy_wh - s.delivered_wh, 0.0)
        row = sch.power_w[i]
        delivered = 0.0
        for t in range(snap.slots):
            w = float(row[t])
            lo, hi = snap.slot_start(t), snap.slot_start(t + 1)
            assert w >= -TOL_W, f"{s.id} slot {t}: negative power {w}"
            if w > TOL_W:
                assert s.arrival <= lo and hi <= s.departure, f"{s.id} slot {t}: charging outside its window"
                assert w <= own_w + TOL_W, f"{s.id} slot {t}: {w} W above own max {own_w}"
            delivered += w * slot_h
            completes = delivered >= need_wh - 1e-3
            if TOL_W < w < min_w - TOL_W:
                assert completes, f"{s.id} slot {t}: {w} W below minimum {min_w} W (not its last slot)"
            node: str | None = e.circuit
            chain = ["site"]
            while node is not None:
                chain.append(node)
                node = parents[node]
            for n in chain:
                loads[n][t] += w
                for q in e.phase_map[:phases]:
                    amps.setdefault((n, q), [0.0] * snap.slots)[t] += w / (e.voltage_v * phases)
        # Exact bookkeeping: reported energy is the sum of power x slot length.
        assert math.isclose(float(sch.energy_wh[i]), delivered, rel_tol=1e-9, abs_tol=1e-6)
        # Requests below 1 mWh count as met (problem.MIN_NEED_KWH).
        assert math.isclose(float(sch.unmet_wh[i]), need_wh - delivered, rel_tol=1e-9, abs_tol=1e-3)
        assert delivered <= need_wh + 1e-3, f"{s.id}: {delivered} Wh above its request {need_wh}"
        assert sch.limited_by[i], f"{s.id}: no limited_by reason"
    for t in range(snap.slots):
        assert math.isclose(float(sch.site_power_w[t]), loads["site"][t], rel_tol=1e-9, abs_tol=1e-6)
    if not respects_limits:
        return
    limits = {"site": (snap.site.capacity_w, snap.site.phase_limits_a)}
    limits.update({c.id: (c.capacity_w, c.phase_limits_a) for c in snap.circuits})
    base = snap.site.base_load_w or (0.0,) * snap.slots
    pv = snap.site.pv_w or (0.0,) * snap.slots
    _assert_current_limits(snap, sch)
    for node, (cap, phase_limits) in limits.items():
        for t in range(snap.slots):
            if cap is not None:
                limit = cap[t] - (base[t] - pv[t] if node == "site" else 0.0)
                assert loads[node][t] <= max(limit, 0.0) + TOL_W, f"{node} slot {t}: {loads[node][t]} W > {limit}"
            for q, limit_a in phase_limits.items():
                got = amps.get((node, q), [0.0] * snap.slots)[t]
                assert got <= limit_a + TOL_A, f"{node} {q} slot {t}: {got} A > {limit_a} A"


GRID_ANGLE_DEG = {"L1": 0.0, "L2": -120.0, "L3": 120.0}


def _assert_current_limits(snap: Snapshot, sch: Schedule) -> None:
    """Every CurrentLimit, exactly: |sum coefficient * I * exp(j angle)| <= limit per slot, where
    I = power / (voltage x phases the session draws on); a term on a 3-phase EVSE at one of its
    grid phases' angles counts only for sessions drawing on that phase."""
    evses = {e.id: e for e in snap.evses}
    for limit in snap.current_limits:
        for t in range(snap.slots):
            z = 0j
            for evse_id, coef, angle in limit.terms:
                e = evses[evse_id]
                for i, s in enumerate(snap.sessions):
                    if s.evse != evse_id:
                        continue
                    phases = s.phases or e.phases
                    if e.lines is None and e.phases == 3:
                        hits = [k for k, q in enumerate(e.phase_map) if abs((GRID_ANGLE_DEG[q] - angle + 180) % 360 - 180) < 1e-6]
                        if hits and hits[0] >= phases:
                            continue
                    current_a = float(sch.power_w[i, t]) / (e.voltage_v * phases)
                    z += coef * current_a * cmath.exp(1j * math.radians(angle))
            assert abs(z) <= limit.limit_a + TOL_A, f"{limit.id} slot {t}: {abs(z)} A > {limit.limit_a} A"
