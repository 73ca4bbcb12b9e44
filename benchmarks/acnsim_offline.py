"""The offline optimum of an ACN-Sim day: the most energy any schedule could deliver.

Perfect knowledge of every session (arrival, departure, request) and of the grid signal,
continuous pilots (0-32 A, as ACN-Sim's BASIC EVSEs allow), one solve over the whole day:

    maximise   sum_{i,t} r_it * V_i * period_h / 1000                      (kWh)
    subject to 0 <= r_it <= max_pilot_i        for arrival_i <= t < departure_i
               sum_t r_it * V_i * period_h / 1000 <= request_i
               |sum_i C_ji r_it exp(j angle_i)| <= L_j(t)      every constraint j, period t

A constraint whose EVSEs share one angle with non-negative coefficients is linear (its
magnitude is the plain sum); the others are second-order cones. Written with cvxpy (the
``bench`` extra): an LP goes to HiGHS, a cone program to Clarabel. acnportal 0.3.3 ships no
offline optimiser of its own (``adacharge`` is a separate package), so this is ours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from benchmarks.acnsim_sites import Session, SignalNetwork


@dataclass(frozen=True, slots=True)
class Offline:
    energy_kwh: float
    per_session_kwh: dict[str, float]
    status: str
    solver: str
    solve_s: float


def offline_optimum(net: SignalNetwork, sessions: list[Session], period_min: float) -> Offline:
    started = time.perf_counter()
    ids = list(net.station_ids)
    col = {s: i for i, s in enumerate(ids)}
    volts = np.asarray(net._voltages, dtype=float)
    angles = np.deg2rad(np.asarray(net._phase_angles, dtype=float))
    c = np.asarray(net.constraint_matrix, dtype=float)
    period_h = period_min / 60.0
    # one variable per (session, period) inside its window
    sess_of: list[int] = []
    slot_of: list[int] = []
    for k, s in enumerate(sessions):
        sess_of.extend([k] * (s.departure - s.arrival))
        slot_of.extend(range(s.arrival, s.departure))
    var_sess = np.asarray(sess_of)
    var_slot = np.asarray(slot_of)
    var_evse = np.asarray([col[sessions[k].station] for k in var_sess])
    nv = var_sess.size
    kwh_per_a = volts[var_evse] * period_h / 1000.0
    upper = np.asarray(net.max_pilot_signals, dtype=float)[var_evse]
    x = cp.Variable(nv, nonneg=True)
    energy = sp.csr_array((kwh_per_a, (var_sess, np.arange(nv))), shape=(len(sessions), nv))
    request = np.asarray([s.energy_kwh for s in sessions])
    cons: list[Any] = [x <= upper, energy @ x <= request]
    slots = np.unique(var_slot)
    slot_index = {int(t): n for n, t in enumerate(slots)}
    col_slot = np.asarray([slot_index[int(t)] for t in var_slot])
    linear_rows: list[tuple[Any, Any]] = []
    cone_rows: list[tuple[Any, Any, Any]] = []
    for j in range(c.shape[0]):
        coef = c[j, var_evse]
        hit = np.flatnonzero(coef)
        if hit.size == 0:
            continue
        limits = np.asarray([net.limits_at(int(t))[j] for t in slots])
        members = np.flatnonzero(c[j])
        linear = np.ptp(angles[members]) < 1e-9 and (c[j, members] >= 0).all()
        rows = col_slot[hit]
        if linear:
            a = sp.csr_array((coef[hit], (rows, hit)), shape=(slots.size, nv))
            linear_rows.append((a, limits))
        else:
            re = sp.csr_array((coef[hit] * np.cos(angles[var_evse[hit]]), (rows, hit)), shape=(slots.size, nv))
            im = sp.csr_array((coef[hit] * np.sin(angles[var_evse[hit]]), (rows, hit)), shape=(slots.size, nv))
            cone_rows.append((re, im, limits))
    for a, limits in linear_rows:
        cons.append(a @ x <= limits)
    for re, im, limits in cone_rows:
        cons.append(cp.SOC(limits, cp.vstack([re @ x, im @ x]), axis=0))
    problem = cp.Problem(cp.Maximize(kwh_per_a @ x), cons)
    solver = cp.CLARABEL if cone_rows else cp.HIGHS
    # HiGHS keeps one global thread pool per process: ems runs HiGHS with 1 thread, so must this.
    opts: dict[str, Any] = {"threads": 1, "output_flag": False} if solver == cp.HIGHS else {}
    problem.solve(solver=solver, **opts)
    values = np.maximum(np.asarray(x.value, dtype=float), 0.0)
    per = np.bincount(var_sess, weights=values * kwh_per_a, minlength=len(sessions))
    return Offline(
        energy_kwh=float(per.sum()),
        per_session_kwh={s.id: float(per[k]) for k, s in enumerate(sessions)},
        status=str(problem.status),
        solver=str(solver),
        solve_s=time.perf_counter() - started,
    )
