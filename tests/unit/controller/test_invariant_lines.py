"""The safety invariant on a line-to-line site: random plans, answers and timings never put a line over its limit.

The sibling of ``test_invariant_property`` (same simulated stations and rounds) on a US-style site: single-phase
EVSEs wired line-to-line (208 V) and line-to-neutral (120 V) on a panel and a pod behind a 480 V delta-wye
transformer. At every instant the check computes, independently of ``ems.controller.lines``, the textbook line
currents (branch phasors on the secondary, ``(I_a - I_c) / n`` and rotations on the primary) for every draw
within what the stations will apply (each EVSE anywhere between 0 and its limit: the vertices of that box), and
asserts each is within its limit.
"""

from __future__ import annotations

import cmath
import itertools
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.controller.budget import SITE, EvsePlace, Limits, NodeLimits
from ems.controller.dispatch import Desired, EvseKey
from ems.controller.lines import wiring_of
from ems.controller.planning import PlanningSettings, limits_now
from ems.domain import composite
from ems.domain.composite import Hardware
from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, TransformerSpec
from ems.domain.units import ALL_PHASES, Phase
from tests.examples import examples
from tests.unit.controller.test_invariant_property import (
    CAP_SLOTS,
    HORIZON_SLOTS,
    SLOT_S,
    T0,
    Evse,
    Sim,
    Station,
    World,
    default_command,
    tx_command,
)

L1, L2, L3 = ALL_PHASES
ANGLE = {L1: 0.0, L2: -120.0, L3: 120.0}
RATIO = 4.0


def branch_angle(e: Evse) -> float:
    if e.place.lines is None:
        return ANGLE[e.place.phase_map[0]]
    a, b = e.place.lines
    z = cmath.exp(1j * math.radians(ANGLE[a])) - cmath.exp(1j * math.radians(ANGLE[b]))
    return math.degrees(cmath.phase(z))


@dataclass
class LineWorld:
    world: World
    site: Site
    limits: dict[str, float]
    """Row (``pod:L1``, ``xf:L2``, ``xf:primary:L3``) -> A."""
    coef: npt.NDArray[np.complex128]
    """(rows, evses): the line current per A of each EVSE."""
    rows: list[str]

    def currents(self, amps: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Worst line current per row over every draw within ``amps`` (per EVSE), by the box's vertices."""
        n = len(amps)
        vertices = np.array(list(itertools.product([0.0, 1.0], repeat=n))) * amps[None, :]
        out: npt.NDArray[np.float64] = np.abs(vertices @ self.coef.T).max(axis=0)
        return out


def coefficients(evses: list[Evse], rows: list[str]) -> npt.NDArray[np.complex128]:
    out = np.zeros((len(rows), len(evses)), dtype=np.complex128)
    for j, e in enumerate(evses):
        b = cmath.exp(1j * math.radians(branch_angle(e)))
        sec = dict.fromkeys(ALL_PHASES, 0j)
        if e.place.lines is None:
            sec[e.place.phase_map[0]] += b
        else:
            sec[e.place.lines[0]] += b
            sec[e.place.lines[1]] -= b
        prim = {L1: (sec[L1] - sec[L3]) / RATIO, L2: (sec[L2] - sec[L1]) / RATIO, L3: (sec[L3] - sec[L2]) / RATIO}
        for i, row in enumerate(rows):
            node, *rest = row.split(":")
            q = Phase(rest[-1])
            if rest[0] == "primary":
                out[i, j] = prim[q]
            elif node == "xf" or (node == "pod" and e.place.circuit == "pod"):
                out[i, j] = sec[q]
    return out


@st.composite
def line_worlds(draw: st.DrawFn) -> LineWorld:
    evses: list[Evse] = []
    specs: dict[str, list[EvseSpec]] = {}
    circuit_of: dict[str, str] = {}
    pairs = [(L1, L2), (L2, L3), (L3, L1)]
    for s in range(draw(st.integers(2, 4))):
        sid = f"S{s}"
        circuit_of[sid] = draw(st.sampled_from(["xf", "pod"]))
        for n in range(1, draw(st.integers(1, 2)) + 1):
            if draw(st.integers(0, 3)) == 0:
                phase = draw(st.sampled_from(ALL_PHASES))
                spec = EvseSpec(n, phases=1, phase_map=(phase,), voltage_v=120.0, max_current_a=32.0)
            else:
                a, b = draw(st.sampled_from(pairs))
                spec = EvseSpec(n, phases=1, phase_map=(a,), voltage_v=208.0, max_current_a=32.0, lines=(a, b))
            specs.setdefault(sid, []).append(spec)
            evses.append(
                Evse(
                    key=(sid, n),
                    hw=Hardware(32.0, 1, spec.voltage_v),
                    place=EvsePlace(circuit_of[sid], spec.phase_map, spec.voltage_v, spec.lines),
                    default_a=draw(st.sampled_from([0.0, 0.0, 6.0])),
                    tx_id=f"tx-{sid}-{n}-0",
                    tx_started=T0,
                )
            )
    rows = [f"{node}:{q}" for node in ("xf", "pod") for q in ALL_PHASES] + [f"xf:primary:{q}" for q in ALL_PHASES]
    coef = coefficients(evses, rows)
    defaults = np.array([e.default_a for e in evses])
    base = np.abs(np.array(list(itertools.product([0.0, 1.0], repeat=len(evses)))) * defaults @ coef.T).max(axis=0)
    limits = {}
    for i, row in enumerate(rows):
        extra = draw(st.sampled_from([4.0, 10.0, 16.0])) if "primary" in row else draw(st.sampled_from([20.0, 40.0]))
        limits[row] = float(base[i]) + extra  # the fail-safe defaults always fit: a link loss is safe by design
    site = Site(
        id="us",
        circuits=(
            Circuit(
                "xf",
                phase_limits_a={q: limits[f"xf:{q}"] for q in ALL_PHASES},
                transformer=TransformerSpec("delta-wye", RATIO, {q: limits[f"xf:primary:{q}"] for q in ALL_PHASES}),
            ),
            Circuit("pod", parent_id="xf", phase_limits_a={q: limits[f"pod:{q}"] for q in ALL_PHASES}),
        ),
        stations=tuple(StationSpec(sid, circuit_id=circuit_of[sid], evses=tuple(es)) for sid, es in specs.items()),
    )
    assert site.problems() == []
    nodes = (NodeLimits(SITE, None, (1e9,) * CAP_SLOTS, {}),)
    stations = {sid: Station(sid, txs={e.key[1]: (e.tx_id, T0) for e in evses if e.key[0] == sid}) for sid in specs}
    return LineWorld(World(evses, stations, nodes, {SITE: {}}), site, limits, coef, rows)


def wired_limits(lw: LineWorld, start: datetime) -> Limits:
    """What the controller weighs raises against (``planning.limits_now`` without a timeline)."""
    assert wiring_of(lw.site) is not None
    return limits_now(lw.site, start, PlanningSettings(slot_s=SLOT_S, horizon_slots=CAP_SLOTS))


def random_plan(lw: LineWorld, rng: random.Random) -> dict[EvseKey, list[float]]:
    """Random A per EVSE and slot, scaled until the worst line current with the defaults kept free holds."""
    evses = lw.world.evses
    defaults = np.array([e.default_a for e in evses])
    plan = {
        e.key: [math.floor(rng.choice([0.0, 6.0, rng.uniform(6, 32), 32.0]) * 10) / 10 for _ in range(HORIZON_SLOTS)]
        for e in evses
    }
    caps = np.array([lw.limits[r] for r in lw.rows])
    for k in range(HORIZON_SLOTS):
        for _ in range(20):
            amps = np.array([plan[e.key][k] for e in evses])
            worst = lw.currents(amps + defaults)
            if (worst <= caps + 1e-9).all():
                break
            factor = float(np.min(caps / np.maximum(worst, 1e-9)))
            for e in evses:
                plan[e.key][k] = math.floor(plan[e.key][k] * factor * 10) / 10
    return plan


class LineSim(Sim):
    def __init__(self, lw: LineWorld, rng: random.Random, failures: bool) -> None:
        super().__init__(lw.world, rng, failures)
        self.lw = lw
        self.caps = np.array([lw.limits[r] for r in lw.rows])

    def check(self, t: datetime) -> None:
        self.checked += 1
        amps = []
        for e in self.w.evses:
            s = self.w.stations[e.key[0]]
            tx = s.txs.get(e.key[1])
            lim = composite.evse_limit(
                s.profiles,
                evse_id=e.key[1],
                t=t,
                hw=e.hw,
                tx_id=None if tx is None else tx[0],
                tx_started_at=None if tx is None else tx[1],
            )
            amps.append(lim.current_a)
        worst = self.lw.currents(np.array(amps))
        for row, w, cap in zip(self.lw.rows, worst, self.caps, strict=True):
            assert w <= cap + 0.01, f"{row} at {t}: {w:.2f} A > {cap:.2f} A"

    def on_round(self, plan: object) -> None:
        if self.round is not None:
            self.at(self.now + timedelta(seconds=1), "round", plan)
            return
        limits = wired_limits(self.lw, self.now)
        amps = plan if isinstance(plan, dict) else random_plan(self.lw, self.rng)
        desired: list[Desired] = []
        for e in self.w.evses:
            s = self.w.stations[e.key[0]]
            if not s.online:
                continue
            desired.append(Desired(e.key[0], default_command(e)))
            b = self.d.beliefs[e.key]
            if b.tx_id is not None:
                desired.append(Desired(e.key[0], tx_command(e, b.tx_id, amps[e.key], self.now), b.tx_id))
        now_s = (self.now - T0).total_seconds()
        rnd = self.d.classify(desired, self.now, now_s)
        wave = self.d.first_wave(rnd)
        if rnd.pending:
            wave += self.d.next_wave(rnd, self.d.budget(limits, self.places, self.now, rnd), self.places)
        self.round = {"rnd": rnd, "limits": limits, "waves": 0}
        self.start_wave(wave)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lw=line_worlds(), seed=st.integers(0, 2**32 - 1), failures=st.booleans())
def test_no_line_is_ever_over_its_limit(lw: LineWorld, seed: int, failures: bool) -> None:
    rng = random.Random(seed)
    sim = LineSim(lw, rng, failures)
    t = T0
    end = T0 + timedelta(seconds=SLOT_S * 12)
    while t < end:
        sim.at(t, "round")
        if failures and rng.random() < 0.15:
            sim.at(t + timedelta(seconds=rng.uniform(0, 30)), "disconnect", rng.choice(list(lw.world.stations)))
        if failures and rng.random() < 0.1:
            sim.at(t + timedelta(seconds=rng.uniform(0, 30)), "reboot", rng.choice(list(lw.world.stations)))
        t += timedelta(seconds=rng.choice([15, 60, 60, 120, 290]))
    sim.run(end)
    assert sim.checked > 0


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lw=line_worlds(), seed=st.integers(0, 2**32 - 1))
def test_without_failures_every_feasible_plan_ends_up_in_force(lw: LineWorld, seed: int) -> None:
    """Exact, not conservative: a plan within the exact line limits is what the stations end up applying."""
    rng = random.Random(seed)
    sim = LineSim(lw, rng, failures=False)
    for k in range(4):
        sim.at(T0 + timedelta(seconds=60 * k), "round")
    final_at = T0 + timedelta(seconds=300)
    plan = random_plan(lw, rng)
    sim.at(final_at, "round", plan)
    sim.at(final_at + timedelta(seconds=40), "round", plan)
    sim.run(final_at + timedelta(seconds=80))
    for e in lw.world.evses:
        s = lw.world.stations[e.key[0]]
        tx = s.txs[e.key[1]]
        assert tx is not None
        applied = composite.evse_limit(
            s.profiles, evse_id=e.key[1], t=sim.now, hw=e.hw, tx_id=tx[0], tx_started_at=tx[1]
        ).current_a
        wanted = plan[e.key][0]
        assert wanted - 1.0 - 1e-6 <= applied <= wanted + 1e-6, f"{e.key}: applies {applied} A, plan {wanted} A"
