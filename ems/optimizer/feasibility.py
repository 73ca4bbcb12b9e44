"""Is a schedule feasible for a snapshot? Every broken rule named, with where and how much.

Independent of how the schedule was made (LP, heuristic, or a file): it recomputes loads
from the snapshot's arrays, never from the LP matrices.

Rules (``x`` = power in W): ``x >= 0``; ``x = 0`` outside the session's window;
``x <= own max``; ``x = 0`` or ``x >= min`` except in the slot where the session completes
its request (an EV that finishes mid-slot averages less); delivered energy <= request;
per node and slot, the sum of its sessions' power <= its W limit and the current on each
grid phase <= its A limit; per current limit and slot, the exact magnitude of its phasor sum
<= its limit (``phasor``, in A). A value passes when within ``atol + rtol * |limit|``, with
``atol`` in the value's unit: ``atol_w`` for power, ``atol_a`` for current.
"""

from __future__ import annotations

import numpy as np

from ems.domain.units import ALL_PHASES, Phase
from ems.optimizer.phasor import magnitudes
from ems.optimizer.problem import Floats, Problem, compile_problem
from ems.optimizer.schedule import Violation
from ems.optimizer.snapshot import Snapshot

DEFAULT_ATOL_W = 1e-3
"""1 mW: far below any meter's resolution, above solver round-off on kW-scaled LPs (~1e-7 kW)."""
DEFAULT_ATOL_A = 1e-4
"""0.1 mA, the current counterpart of 1 mW (both far below what a meter resolves). Before, the
current rules used the 1 mW figure as amps, 1 mA: the uncontrolled plan of a session needing
0.3 Wh put 0.54 mA on a phase limited to 0 A and was reported feasible (found by
tests/unit/optimizer/test_properties.py)."""
DEFAULT_RTOL = 1e-6


def check(
    snapshot: Snapshot | Problem,
    power_w: Floats,
    atol: float = DEFAULT_ATOL_W,
    rtol: float = DEFAULT_RTOL,
    atol_a: float = DEFAULT_ATOL_A,
) -> list[Violation]:
    """Every violation of the rules above (empty: feasible). ``power_w`` is (sessions, slots)."""
    p = snapshot if isinstance(snapshot, Problem) else compile_problem(snapshot.validate())
    ids = [s.id for s in p.snapshot.sessions]
    x = np.asarray(power_w, dtype=np.float64) / 1000.0
    a_kw = atol / 1000.0
    out: list[Violation] = []

    def per_session(kind: str, mask: np.ndarray, excess: Floats, what: str) -> None:
        for i in np.flatnonzero(mask.any(axis=1)):
            slots = tuple(int(t) for t in np.flatnonzero(mask[i]))
            worst = float(excess[i][mask[i]].max()) * 1000.0
            out.append(
                Violation(kind, f"session {ids[i]}: {what}", session=ids[i], slots=slots, amount=worst, unit="W")
            )

    t = np.arange(p.slots)
    window = (t[None, :] >= p.first[:, None]) & (t[None, :] < p.end[:, None])
    per_session("negative_power", x < -a_kw, -x, "negative power")
    per_session("outside_window", ~window & (x > a_kw), x, "power outside its window")
    own = p.max_kw[:, None]
    per_session("above_max", x > own * (1 + rtol) + a_kw, x - own, "power above its own max")
    cum = np.cumsum(x, axis=1) * p.slot_h
    completes = cum >= p.need_kwh[:, None] - 1e-6 * np.maximum(p.need_kwh[:, None], 1.0)
    low = (x > a_kw) & (x < p.min_kw[:, None] * (1 - rtol) - a_kw) & ~completes
    per_session("below_min", low, p.min_kw[:, None] - x, "power between 0 and its minimum")
    energy = x.sum(axis=1) * p.slot_h
    over = energy > p.need_kwh * (1 + rtol) + a_kw * p.slot_h * p.slots
    for i in np.flatnonzero(over):
        out.append(
            Violation(
                "above_request",
                f"session {ids[i]}: {energy[i] * 1000:.3f} Wh planned, {p.need_kwh[i] * 1000:.3f} Wh requested",
                session=ids[i],
                amount=float(energy[i] - p.need_kwh[i]) * 1000.0,
                unit="Wh",
            )
        )
    load = p.incidence @ x
    out.extend(
        _node_excess(p, "node_power", "load above its power limit", load * 1000.0, p.node_cap_kw * 1000.0, atol, rtol)
    )
    for q, phase in enumerate(ALL_PHASES):
        amps = p.incidence @ (p.amps_per_kw[:, q, None] * x)
        limit = np.broadcast_to(p.node_phase_a[:, q, None], amps.shape)
        what = f"current on {phase} above its limit"
        out.extend(_node_excess(p, "node_phase", what, amps, limit, atol_a, rtol, phase))
    if p.has_phasors:
        line_a = magnitudes(p.phasor_coef, x)
        limit_a = p.phasor_limit_a[:, None]
        over_a = line_a > limit_a * (1 + rtol) + atol_a
        for c in np.flatnonzero(over_a.any(axis=1)):
            bad = over_a[c]
            out.append(
                Violation(
                    "phasor",
                    f"current limit {p.phasor_ids[c]}: line current above its limit",
                    node=p.phasor_ids[c],
                    slots=tuple(int(s) for s in np.flatnonzero(bad)),
                    amount=float((line_a[c] - p.phasor_limit_a[c])[bad].max()),
                    unit="A",
                )
            )
    return out


def is_feasible(
    snapshot: Snapshot | Problem, power_w: Floats, atol: float = DEFAULT_ATOL_W, rtol: float = DEFAULT_RTOL
) -> bool:
    """True when :func:`check` finds nothing."""
    return not check(snapshot, power_w, atol, rtol)


def _node_excess(
    p: Problem,
    kind: str,
    what: str,
    value: Floats,
    limit: Floats,
    atol: float,
    rtol: float,
    phase: Phase | None = None,
) -> list[Violation]:
    """One violation per node whose ``value`` (K, slots) exceeds ``limit`` in some slot."""
    over = value > limit * (1 + rtol) + atol
    out: list[Violation] = []
    for k in np.flatnonzero(over.any(axis=1)):
        node, bad = p.node_ids[k], over[k]
        out.append(
            Violation(
                kind,
                f"{_node(node)}: {what}",
                node=node,
                phase=phase,
                slots=tuple(int(s) for s in np.flatnonzero(bad)),
                amount=float((value[k] - limit[k])[bad].max()),
                unit="A" if phase is not None else "W",
            )
        )
    return out


def _node(node: str) -> str:
    return "site" if node == "site" else f"circuit {node}"
