"""ACN-Sim instances for the online benchmark: workplace days, networks, a grid signal.

- **Sessions** (:func:`workplace_evs`): seeded; arrivals uniform 7-10 h, stays 4-10 h,
  requests 5-40 kWh; ACN-Sim's ideal battery, so a car takes what its pilot allows until its
  request is in (``Battery(capacity, capacity - request, max_power)``, max power above the
  EVSE's 32 A x 208 V). The estimated departure is the true one.
- **single-phase** (:func:`single_phase`): acnportal's ``simple_acn``, one BASIC EVSE (0-32 A,
  continuous) per session at 208 V, one aggregate limit at ``share`` of the EVSEs' sum.
- **caltech** (:func:`caltech`): acnportal's ``caltech_acn(basic_evse=True)`` (54 EVSEs, 208 V
  line-to-line on AB/BC/CA, 150 kW transformer: primary and secondary line limits that are
  magnitudes of phasor sums, two 80 A pods) replicated ``ceil(N / 54)`` times, each copy with
  its own transformer and pods (a campus of identical garages), constraint for constraint.
- **grid signal** (:class:`SignalNetwork`): the grid constraints (simple_acn's aggregate,
  caltech's six transformer lines, not the pods) scaled per period by a profile; every
  algorithm sees the limit in force now (ACN-Sim's interface has no forecast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from acnportal.acnsim import EV, Battery, ChargingNetwork, EventQueue, PluginEvent
from acnportal.acnsim.models.evse import get_evse_by_type
from acnportal.acnsim.network import Current
from acnportal.acnsim.network.sites import caltech_acn, simple_acn

VOLTAGE_V = 208.0
EVSE_MAX_A = 32.0
EV_MAX_POWER_KW = 7.0
"""Above the EVSE's 6.656 kW: the EVSE's pilot is the only limit on a car."""
BATTERY_KWH = 100.0
DIP = (11.0, 14.0, 0.5)
"""Grid signal: from 11:00 to 14:00 the grid constraints are at 50 %."""
GRID_PREFIXES = ("Primary", "Secondary", "Aggregate")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    station: str
    arrival: int
    """Period it plugs in (charges from this period on)."""
    departure: int
    """Period it leaves (charges until the one before)."""
    energy_kwh: float


class SignalNetwork(ChargingNetwork):
    """A ChargingNetwork whose grid constraints follow ``factors[period]`` (1: as built)."""

    factors: Any = None
    scaled: Any = None
    base: Any = None
    history: list[Any]

    def apply_signal(self, factors: Any) -> None:
        self.factors = np.asarray(factors, dtype=float)
        self.scaled = np.array([str(n).startswith(GRID_PREFIXES) for n in self.constraint_index])
        self.base = self.magnitudes.copy()
        self.history = []
        self._period = 0
        self._set(0)

    def limits_at(self, period: int) -> Any:
        if self.factors is None:
            return self.magnitudes.copy()
        f = self.factors[min(period, self.factors.size - 1)]
        return np.where(self.scaled, self.base * f, self.base)

    def _set(self, period: int) -> None:
        self.magnitudes = self.limits_at(period)
        self.history.append(self.magnitudes.copy())

    def post_charging_update(self) -> None:
        if self.factors is not None:
            self._period += 1
            self._set(self._period)


def workplace_evs(n: int, seed: int, period_min: float, stations: list[str]) -> list[Session]:
    """``n`` sessions on the first ``n`` of ``stations`` (one session per EVSE)."""
    rng = np.random.default_rng(seed)
    arrival_h = rng.uniform(7.0, 10.0, n)
    stay_h = rng.uniform(4.0, 10.0, n)
    energy = rng.uniform(5.0, 40.0, n)
    per_h = 60.0 / period_min
    out = []
    for i in range(n):
        a = math.ceil(arrival_h[i] * per_h)
        d = a + max(1, round(stay_h[i] * per_h))
        out.append(Session(f"s{i}", stations[i], a, d, round(float(energy[i]), 3)))
    return out


def events_of(sessions: list[Session]) -> EventQueue:
    evs = []
    for s in sessions:
        battery = Battery(BATTERY_KWH, BATTERY_KWH - s.energy_kwh, EV_MAX_POWER_KW)
        ev = EV(s.arrival, s.departure, s.energy_kwh, s.station, s.id, battery, estimated_departure=s.departure)
        evs.append(PluginEvent(s.arrival, ev))
    return EventQueue(evs)


def single_phase(n: int, share: float) -> SignalNetwork:
    ids = [f"EVSE-{i:04d}" for i in range(n)]
    cap_kw = share * n * EVSE_MAX_A * VOLTAGE_V / 1000.0
    net: SignalNetwork = simple_acn(ids, "BASIC", VOLTAGE_V, cap_kw, network_type=SignalNetwork)
    return net


def caltech(n: int) -> SignalNetwork:
    """``ceil(n / 54)`` copies of ``caltech_acn(basic_evse=True)``, ids ``r<k>-CA-...``."""
    one = caltech_acn(basic_evse=True, voltage=VOLTAGE_V)
    copies = max(1, math.ceil(n / len(one.station_ids)))
    net = SignalNetwork()
    for k in range(copies):
        for sid, volt, angle in zip(one.station_ids, one._voltages, one._phase_angles, strict=True):
            net.register_evse(get_evse_by_type(f"r{k}-{sid}", "BASIC"), float(volt), float(angle))
    for k in range(copies):
        for j, name in enumerate(one.constraint_index):
            row = one.constraint_matrix[j]
            loads = {f"r{k}-{one.station_ids[i]}": float(row[i]) for i in np.flatnonzero(row)}
            net.add_constraint(Current(loads), float(one.magnitudes[j]), name=f"{name} r{k}")
    return net


def station_order(net: ChargingNetwork, seed: int) -> list[str]:
    """Stations in the order sessions take them: interleaved across caltech copies (so each
    copy hosts about ``n / copies`` sessions), shuffled within each copy."""
    rng = np.random.default_rng(seed + 7919)
    by_copy: dict[str, list[str]] = {}
    for s in net.station_ids:
        by_copy.setdefault(s.split("-", 1)[0] if s.startswith("r") else "", []).append(s)
    shuffled = [list(rng.permutation(v)) for v in by_copy.values()]
    out = []
    for pos in range(max(len(v) for v in shuffled)):
        out.extend(str(v[pos]) for v in shuffled if pos < len(v))
    return out


def dip_factors(period_min: float, periods: int, dip: tuple[float, float, float] = DIP) -> Any:
    hours = np.arange(periods) * period_min / 60.0
    return np.where((hours >= dip[0]) & (hours < dip[1]), dip[2], 1.0)


def install_fast_feasibility() -> None:
    """acnportal's sorted algorithms with a vectorised ``infrastructure_constraints_feasible``:
    the same test (``|C diag(exp(j angle)) r| <= limit + max(atol, rtol * limit)``, or ``|C| r``
    when linear) as one sparse product instead of a Python loop over constraints. EDF and LLF
    decide exactly as before; they only run faster (152 constraints at 1,000 EVSEs)."""
    import scipy.sparse as sp
    from acnportal.algorithms import sorted_algorithms

    def feasible(
        rates: Any,
        infrastructure: Any,
        linear: bool = False,
        violation_tolerance: float = 1e-5,
        relative_tolerance: float = 1e-7,
    ) -> bool:
        key = "_bench_linear" if linear else "_bench_phasor"
        m = getattr(infrastructure, key, None)
        if m is None:
            c = np.asarray(infrastructure.constraint_matrix, dtype=float)
            if linear:
                m = sp.csr_array(np.abs(c))
            else:
                m = sp.csr_array(c * np.exp(1j * np.deg2rad(np.asarray(infrastructure.phases, dtype=float))))
            setattr(infrastructure, key, m)
        limits = np.asarray(infrastructure.constraint_limits, dtype=float)
        tol = np.maximum(violation_tolerance, relative_tolerance * limits)
        cur = np.abs(m @ np.asarray(rates, dtype=float))
        bound = (limits + tol).reshape((-1,) + (1,) * (cur.ndim - 1))
        return bool(np.all(cur <= bound))

    sorted_algorithms.infrastructure_constraints_feasible = feasible
