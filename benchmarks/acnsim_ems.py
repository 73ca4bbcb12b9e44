"""ems as an ACN-Sim scheduling algorithm (acnportal's ``BaseAlgorithm``), for the online benchmark.

    from benchmarks.acnsim_ems import EmsAlgorithm
    Simulator(network, EmsAlgorithm(), events, start, period=5)

Each ``schedule(active_sessions)`` call builds an ems :class:`~ems.optimizer.snapshot.Snapshot`
from what ACN-Sim's ``Interface`` says now (nothing else: no forecast, no true departure),
plans it with the controller's :class:`~ems.optimizer.mpc.RollingPlanner` (warm-started from
the previous call, non-uniform horizon) and returns the first slot's currents.

Units. ACN-Sim counts time in periods of ``interface.period`` minutes from the simulation's
start, energy in kWh, rates in A (per EVSE, at the EVSE's own voltage, each EVSE on one
phase angle). ems wants UTC datetimes, Wh, W and A. Period ``k`` is mapped to
``EPOCH + k * period``; slot ``s`` of a snapshot is period ``now + s``.

The network. ACN-Sim's ``ChargingNetwork`` is ``constraint_matrix`` (M x N), ``magnitudes`` (M),
``constraint_index`` (names) and a phase angle per EVSE: constraint ``j`` is
``|sum_i C[j, i] * I_i * exp(j * angle_i)| <= magnitudes[j]``. :func:`network_model` maps it:

- a constraint whose EVSEs all share one angle, with coefficients all 1, is an ordinary
  circuit (a pod, simple_acn's aggregate): exact, as an ems circuit with a per-phase limit
  (or the site's, when it covers every EVSE);
- any other constraint (caltech_acn's transformer lines, |I_ab - I_ca| <= L) is a phasor
  limit: an ems ``CurrentLimit`` (exact second-order cone, the ``wiring`` branch) when this
  ems has it, else a *stand-in*: the line's limit split between the EVSE groups it sums
  (by their largest possible contribution) into per-group current bounds on the site's
  phases. Valid (``|sum| <= sum |.|`` and every group stays within its share) but
  conservative: capacity cannot move between lines as the load moves.

EVSEs sharing a phase angle are put on the same ems phase (angles sorted, L1, L2, L3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from acnportal.algorithms import BaseAlgorithm

from ems.domain.units import ALL_PHASES, Phase
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.snapshot import CircuitLimits, EvseLimits, SessionDemand, SiteLimits, Snapshot

try:  # the exact phasor limit, from the ``wiring`` branch (issue 12, item 2)
    from ems.optimizer.snapshot import CurrentLimit
except ImportError:  # pragma: no cover - depends on the ems version
    CurrentLimit = None

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
"""ACN-Sim's period 0 (the benchmark's days start at midnight)."""
ANGLE_TOL_DEG = 1e-6


def has_exact_phasor_limits() -> bool:
    """True when this ems can plan phasor limits exactly (``CurrentLimit``)."""
    return CurrentLimit is not None


@dataclass(frozen=True, slots=True)
class NetworkModel:
    """A ChargingNetwork as ems sees it; per-constraint limits are scaled per call."""

    evses: dict[str, EvseLimits]
    circuits: tuple[tuple[int, str], ...]
    """(constraint index, ems circuit id) for each plain circuit (all coefficients 1, one angle)."""
    site_constraint: int | None
    """A plain constraint that covers every EVSE: the site's phase limit."""
    site_phase: Phase
    circuit_of: dict[str, str]
    phasor: tuple[int, ...]
    """Indices of the phasor constraints (exact CurrentLimit or stand-in)."""
    component_of: dict[str, str]
    """Stand-in: the ems circuit (one per set of EVSEs linked by phasor constraints) of each EVSE."""
    components: dict[str, tuple[int, ...]]
    """Stand-in: the phasor constraints of each such circuit."""
    group_of: dict[str, Phase]
    """Stand-in: the ems phase of each EVSE (one per distinct angle)."""
    coefficients: Any
    """(M, N) constraint matrix (numpy)."""
    angles_deg: Any
    station_ids: tuple[str, ...]
    exact: bool
    phasor_terms: tuple[tuple[tuple[str, float, float], ...], ...] = ()
    """Per phasor constraint (as ``phasor``): (station id, coefficient, angle) of each EVSE in it,
    translated once (the network is fixed; a call keeps the terms of the EVSEs with an EV)."""
    circuit_parent: dict[str, str | None] = field(default_factory=dict)
    """Per plain circuit: :func:`_parent`, and ``circuit_phase``: :func:`_circuit_phase` (once)."""
    circuit_phase: dict[str, Phase] = field(default_factory=dict)


def network_model(infra: Any, *, exact: bool | None = None) -> NetworkModel:
    """Map ACN-Sim's ``InfrastructureInfo`` (see the module docstring).

    ``exact``: plan phasor limits as ``CurrentLimit`` (default: when available), else the stand-in.
    """
    use_exact = has_exact_phasor_limits() if exact is None else exact
    if use_exact and not has_exact_phasor_limits():
        raise RuntimeError("this ems has no CurrentLimit (merge the wiring branch)")
    c = np.asarray(infra.constraint_matrix, dtype=float)
    angles = np.asarray(infra.phases, dtype=float)
    ids = tuple(str(s) for s in infra.station_ids)
    distinct = sorted({round(float(a), 6) for a in angles})
    if len(distinct) > 3:
        raise ValueError(f"more than three phase angles: {distinct}")
    phase_of_angle = {a: ALL_PHASES[k] for k, a in enumerate(distinct)}
    group_of = {s: phase_of_angle[round(float(angles[i]), 6)] for i, s in enumerate(ids)}
    evses = {
        s: EvseLimits(
            id=s,
            circuit=None,
            phases=1,
            phase_map=(group_of[s],),
            voltage_v=float(infra.voltages[i]),
            min_a=float(infra.min_pilot[i]),
            max_a=float(infra.max_pilot[i]),
        )
        for i, s in enumerate(ids)
    }
    circuits: list[tuple[int, str]] = []
    phasor: list[int] = []
    site: int | None = None
    circuit_of: dict[str, str] = {}
    for j in range(c.shape[0]):
        members = np.flatnonzero(c[j] != 0)
        plain = np.allclose(c[j, members], 1.0) and np.ptp(angles[members]) < ANGLE_TOL_DEG if members.size else True
        if not plain:
            phasor.append(j)
        elif members.size == len(ids) and site is None:
            site = j
        else:
            name = str(infra.constraint_ids[j])
            if any(ids[i] in circuit_of for i in members):
                raise ValueError(f"constraint {name}: overlapping plain constraints are not a tree")
            circuits.append((j, name))
            circuit_of.update({ids[i]: name for i in members})
    site_phase = group_of[ids[0]] if ids else ALL_PHASES[0]
    component_of, components = ({}, {}) if use_exact else _components(c, phasor, ids)
    evses = {s: _with_circuit(e, circuit_of.get(s, component_of.get(s))) for s, e in evses.items()}
    model = NetworkModel(
        evses,
        tuple(circuits),
        site,
        site_phase,
        circuit_of,
        tuple(phasor),
        component_of,
        components,
        group_of,
        c,
        angles,
        ids,
        use_exact,
    )
    terms = tuple(
        tuple((ids[i], float(c[j, i]), float(angles[i])) for i in np.flatnonzero(c[j]).tolist()) for j in phasor
    )
    names = [name for _, name in circuits]
    parents = {name: _parent(model, name) for name in names}
    phases = {name: _circuit_phase(model, name) for name in names}
    return replace(model, phasor_terms=terms, circuit_parent=parents, circuit_phase=phases)


def _components(c: Any, phasor: list[int], ids: tuple[str, ...]) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """EVSEs linked by phasor constraints (one caltech_acn copy each), as stand-in circuits."""
    parent = list(range(len(phasor)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    owner: dict[int, int] = {}
    for k, j in enumerate(phasor):
        for i in np.flatnonzero(c[j]):
            if int(i) in owner:
                parent[root(k)] = root(owner[int(i)])
            else:
                owner[int(i)] = k
    groups: dict[int, list[int]] = {}
    for k, j in enumerate(phasor):
        groups.setdefault(root(k), []).append(j)
    names = {r: f"lines-{n}" for n, r in enumerate(sorted(groups))}
    component_of = {ids[i]: names[root(k)] for i, k in owner.items()}
    return component_of, {names[r]: tuple(js) for r, js in groups.items()}


def _with_circuit(e: EvseLimits, circuit: str | None) -> EvseLimits:
    return EvseLimits(e.id, circuit, e.phases, e.phase_map, e.voltage_v, e.min_a, e.max_a)


def stand_in_phase_limits(
    model: NetworkModel, limits_a: Any, constraints: tuple[int, ...], active: set[str]
) -> dict[Phase, float]:
    """Per-phase bounds on a stand-in circuit that keep its phasor constraints (inner, conservative).

    Constraint ``j`` sums groups ``g`` (EVSEs on one angle) with coefficients ``c_gi``; its limit
    ``L_j`` is split into shares proportional to each group's largest contribution now
    (``sum_i |c_gi| max_a_i`` over the EVSEs with an EV: re-split at every call, so the
    capacity follows the cars); group ``g`` then carries at most ``share_g / max_i |c_gi|`` A.
    Since ``|sum| <= sum_g max|c_g| I_g <= sum_g share_g = L_j``, the constraint holds.
    """
    out: dict[Phase, float] = {}
    max_a = np.array([model.evses[s].max_a if s in active else 0.0 for s in model.station_ids])
    groups = np.array([ALL_PHASES.index(model.group_of[s]) for s in model.station_ids])
    for j in constraints:
        row = np.abs(model.coefficients[j])
        weight = np.array([float((row * max_a)[groups == g].sum()) for g in range(3)])
        if weight.sum() <= 0:
            continue
        for g in np.flatnonzero(weight > 0):
            share = float(limits_a[j]) * weight[g] / weight.sum()
            bound = share / float(row[groups == g].max())
            phase = ALL_PHASES[int(g)]
            out[phase] = min(out.get(phase, float("inf")), bound)
    return out


def snapshot_of(
    model: NetworkModel,
    sessions: list[Any],
    now_period: int,
    period_min: float,
    limits_a: Any,
) -> Snapshot:
    """The ems snapshot of ACN-Sim's present (``sessions``: ``SessionInfo`` of the active EVs)."""
    slot_s = round(period_min * 60)
    start = EPOCH + timedelta(seconds=slot_s * now_period)
    last = max((int(s.estimated_departure) for s in sessions), default=now_period + 1)
    slots = max(last - now_period, 1)
    active = {str(s.station_id) for s in sessions}
    at: dict[int, datetime] = {}  # period -> its start: a few dozen distinct periods among hundreds of sessions

    def period(k: int) -> datetime:
        when = at.get(k)
        if when is None:
            when = at[k] = EPOCH + timedelta(seconds=slot_s * k)
        return when

    demands = tuple(
        SessionDemand(
            id=str(s.session_id),
            evse=str(s.station_id),
            arrival=period(min(int(s.arrival), now_period)),
            departure=period(now_period + max(int(s.estimated_departure) - now_period, 1)),
            energy_wh=float(s.requested_energy) * 1000.0,
            delivered_wh=float(s.energy_delivered) * 1000.0,
        )
        for s in sessions
    )
    site_phase: dict[Phase, float] = {}
    if model.site_constraint is not None:
        site_phase[model.site_phase] = float(limits_a[model.site_constraint])
    used = {model.circuit_of[s] for s in active if s in model.circuit_of}
    lines = {model.component_of[s] for s in active if s in model.component_of}
    circuits = tuple(
        CircuitLimits(name, None, None, stand_in_phase_limits(model, limits_a, model.components[name], active))
        for name in sorted(lines)
    ) + tuple(
        CircuitLimits(name, model.circuit_parent[name], None, {model.circuit_phase[name]: float(limits_a[j])})
        for j, name in model.circuits
        if name in used
    )
    extra: dict[str, Any] = {}
    if model.phasor and model.exact:
        extra["current_limits"] = _current_limits(model, limits_a, active)
    return Snapshot(
        start=start,
        slot_s=slot_s,
        slots=slots,
        site=SiteLimits(phase_limits_a=site_phase),
        circuits=circuits,
        evses=tuple(model.evses[s] for s in model.station_ids if s in active),
        sessions=demands,
        **extra,
    )


def _parent(model: NetworkModel, name: str) -> str | None:
    """A plain circuit (a pod) sits under the stand-in circuit of its EVSEs, if they share one."""
    owners = {model.component_of.get(s) for s, c in model.circuit_of.items() if c == name}
    return owners.pop() if len(owners) == 1 else None


def _circuit_phase(model: NetworkModel, name: str) -> Phase:
    return next(model.group_of[s] for s, c in model.circuit_of.items() if c == name)


def _current_limits(model: NetworkModel, limits_a: Any, active: set[str]) -> tuple[Any, ...]:
    assert CurrentLimit is not None
    out = []
    for j, every in zip(model.phasor, model.phasor_terms, strict=True):
        terms = tuple(t for t in every if t[0] in active)
        if terms:
            out.append(CurrentLimit(id=f"c{j}", limit_a=float(limits_a[j]), terms=terms))
    return tuple(out)


class EmsAlgorithm(BaseAlgorithm):
    """ems's online LP behind acnportal's algorithm interface (one period per call).

    ``exact``: phasor limits as ``CurrentLimit`` (``None``: when this ems has it), else the stand-in.
    ``call_s``: wall time of each ``schedule`` call (snapshot, plan, rates).
    """

    def __init__(self, planner: RollingPlanner | None = None, *, exact: bool | None = None) -> None:
        super().__init__()
        self.max_recompute = 1  # one period per plan: re-planned every period, like EDF and LLF
        self.planner = planner or RollingPlanner()
        self.exact = exact
        self.call_s: list[float] = []
        self.statuses: list[str] = []
        self._model: NetworkModel | None = None

    @property
    def model(self) -> NetworkModel:
        if self._model is None:
            self._model = network_model(self.interface.infrastructure_info(), exact=self.exact)
        return self._model

    def schedule(self, active_sessions: list[Any]) -> dict[str, list[float]]:
        started = time.perf_counter()
        iface = self.interface
        live = [s for s in active_sessions if s.remaining_demand > 1e-6 and s.estimated_departure > iface.current_time]
        if not live:
            self.call_s.append(time.perf_counter() - started)
            return {}
        limits_a = np.asarray(iface.get_constraints().magnitudes, dtype=float)
        model = self.model
        snap = snapshot_of(model, live, int(iface.current_time), float(iface.period), limits_a)
        plan = self.planner.plan(snap)
        rates = {s: 0.0 for s in (str(x.station_id) for x in live)}
        evse_of = {d.id: d.evse for d in snap.sessions}
        for k, sid in enumerate(plan.session_ids):
            e = model.evses[evse_of[sid]]
            rates[e.id] = float(min(max(plan.current_a[k, 0], 0.0), e.max_a))
        self.statuses.append(str(plan.status))
        self.call_s.append(time.perf_counter() - started)
        return {s: [a] for s, a in rates.items()}
