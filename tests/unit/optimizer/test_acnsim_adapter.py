"""The ACN-Sim adapter of the online benchmark (benchmarks/acnsim_ems.py).

acnportal is in the ``bench`` extra only (CI does not install it), so this module is skipped
without it; it is the only test that imports acnportal.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

acnsim = pytest.importorskip("acnportal.acnsim")

from acnportal.acnsim.interface import SessionInfo  # noqa: E402
from acnportal.acnsim.network.sites import caltech_acn, simple_acn  # noqa: E402

from benchmarks.acnsim_ems import EmsAlgorithm, network_model, snapshot_of, stand_in_phase_limits  # noqa: E402
from ems.domain.units import Phase  # noqa: E402


class _Info:
    """The fields of acnportal's InfrastructureInfo the adapter reads, from a network."""

    def __init__(self, net: acnsim.ChargingNetwork) -> None:
        self.constraint_matrix = net.constraint_matrix
        self.constraint_limits = net.magnitudes
        self.constraint_ids = net.constraint_index
        self.phases = net._phase_angles
        self.voltages = net._voltages
        self.station_ids = net.station_ids
        self.max_pilot = net.max_pilot_signals
        self.min_pilot = net.min_pilot_signals


def _session(station: str, sid: str, kwh: float, departure: int) -> SessionInfo:
    return SessionInfo(station, sid, kwh, 0.0, 0, departure, departure, 0)


def test_simple_acn_aggregate_is_the_site_phase_limit_and_the_snapshot_is_valid() -> None:
    net = simple_acn(["a", "b"], "BASIC", 208, 10.0)  # 10 kW / 208 V = 48.1 A
    model = network_model(_Info(net), exact=False)
    snap = snapshot_of(model, [_session("a", "s1", 10.0, 12), _session("b", "s2", 5.0, 6)], 0, 5.0, net.magnitudes)
    assert snap.problems() == []
    assert snap.slot_s == 300 and snap.slots == 12
    assert snap.site.phase_limits_a == {Phase.L1: pytest.approx(10_000 / 208)}
    assert [e.voltage_v for e in snap.evses] == [208.0, 208.0]
    assert [e.min_a for e in snap.evses] == [0.0, 0.0]
    assert snap.sessions[1].departure == snap.start + (snap.slot_start(6) - snap.start)
    assert snap.sessions[0].energy_wh == 10_000.0


def test_caltech_stand_in_bounds_keep_every_exact_constraint() -> None:
    net = caltech_acn(basic_evse=True)
    info = _Info(net)
    model = network_model(info, exact=False)
    assert len(model.phasor) == 6 and len(model.circuits) == 2  # six transformer lines; two pods
    everyone = set(model.station_ids)
    (name,) = model.components
    bounds = stand_in_phase_limits(model, net.magnitudes, model.components[name], everyone)
    lines = [j for j, n in enumerate(net.constraint_index) if "Pod" not in n]
    phasors = net.constraint_matrix[lines] * np.exp(1j * np.deg2rad(net._phase_angles))
    rng = np.random.default_rng(0)
    for _ in range(200):  # any currents within the per-line bounds satisfy the phasor limits
        rates = rng.uniform(0, 32, len(model.station_ids))
        for phase, bound in bounds.items():
            members = np.array([model.group_of[s] == phase for s in model.station_ids])
            total = rates[members].sum()
            if total > bound:
                rates[members] *= bound / total
        assert (np.abs(phasors @ rates) <= net.magnitudes[lines] + 1e-9).all()


def test_ems_runs_inside_acnsim_within_its_limit() -> None:
    net = simple_acn(["a", "b", "c"], "BASIC", 208, 8.0)  # 38.5 A for three 32 A EVSEs
    evs = [
        acnsim.EV(0, 24, kwh, sid, f"s{k}", acnsim.Battery(100.0, 100.0 - kwh, 7.0), estimated_departure=24)
        for k, (sid, kwh) in enumerate([("a", 6.0), ("b", 4.0), ("c", 2.0)])
    ]
    events = acnsim.EventQueue([acnsim.PluginEvent(0, ev) for ev in evs])
    alg = EmsAlgorithm()
    sim = acnsim.Simulator(net, alg, events, datetime(2026, 1, 5, tzinfo=UTC), period=15, verbose=False)
    sim.run()
    assert sim.charging_rates.sum(axis=0).max() <= 8000 / 208 + 1e-5
    assert acnsim.total_energy_delivered(sim) == pytest.approx(12.0, rel=1e-6)
    assert set(alg.statuses) == {"OPTIMAL"}
