"""The site-load page's numbers: measured load per phase over the last 24 h, the capacity in force
over the same span and ahead, and the plan ahead. Read from the ports; the drawing is ``charts``.

Measured current per grid phase: each EVSE's ``Current.Import`` samples per phase, averaged per
bucket and mapped onto the grid phase it is wired to (``EvseSpec.phase_map``), summed over EVSEs;
an EVSE that reports only its total power counts as that power split evenly over its phases at
its voltage (as the controller reads it). On a site with line-to-line EVSEs or transformers the
line currents are the exact phasor magnitudes (``ems.controller.lines.line_currents_a``).
Past capacity is rebuilt from the stored accepted signals (for each kind the newest one received by
then) under the site's static limits; ahead, it is the capacity service's own timeline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from ems.controller.lines import Draw, line_currents_a, wiring_of
from ems.domain.capacity import CapacitySignal, SignalKind
from ems.domain.session import Measurand, MeterSample
from ems.domain.site import Site
from ems.domain.units import ALL_PHASES, Phase
from ems.grid.capacity import block_bounds
from ems.optimizer.snapshot import SITE_NODE_ID
from ems.ports.grid import CapacitySignals
from ems.ports.monitor import SiteMonitor
from ems.ports.stores import CapacitySignalStore, MeterSampleStore

BUCKET_S = 900
HISTORY_S = 86_400
MAX_SAMPLES_PER_STATION = 400_000


@dataclass(frozen=True, slots=True)
class LoadHistory:
    start: datetime
    now: datetime
    end: datetime
    times: list[datetime]
    """Bucket starts over the past 24 h."""
    phase_current_a: dict[Phase, list[float]]
    power_w: list[float]
    phase_limit_a: dict[Phase, list[tuple[datetime, float | None]]]
    capacity_w: list[tuple[datetime, float | None]]
    plan_w: list[tuple[datetime, float | None]]


def _line_currents(site: Site, own: dict[tuple[str, int, int], list[float]], n: int) -> dict[Phase, list[float]]:
    """Per bucket, the connection's line currents: per-phase sums, or on a site with line-to-line EVSEs or
    transformers the exact phasor magnitudes (``lines.line_currents_a``)."""
    wiring = wiring_of(site)
    draws: list[list[Draw]] = [[] for _ in range(n)]
    for (station_id, evse_id, b), amps in own.items():
        placed = site.station(station_id)
        evse = next((e for e in placed.evses if e.evse_id == evse_id), None) if placed else None
        if placed is not None and evse is not None:
            draws[b].append((placed.circuit_id, evse.phase_map, evse.lines, amps))
    out: dict[Phase, list[float]] = {p: [0.0] * n for p in ALL_PHASES}
    for b in range(n):
        if draws[b]:
            for p, a in line_currents_a(wiring, SITE_NODE_ID, draws[b]).items():
                out[p][b] = a
    return out


def _bucket(t: datetime, start: datetime) -> int:
    return int((t - start).total_seconds() // BUCKET_S)


async def load_history(
    site: Site,
    now: datetime,
    samples: MeterSampleStore,
    signals: CapacitySignalStore,
    capacity: CapacitySignals | None,
    monitor: SiteMonitor | None,
) -> LoadHistory:
    start = now - timedelta(seconds=HISTORY_S)
    n = HISTORY_S // BUCKET_S
    times = [start + timedelta(seconds=i * BUCKET_S) for i in range(n)]
    plan = monitor.plan(site.id) if monitor is not None else None
    ahead_s = 7_200.0
    if plan is not None and plan.site_power_w:
        plan_end = plan.start + timedelta(seconds=plan.slot_s * len(plan.site_power_w))
        ahead_s = min(max((plan_end - now).total_seconds(), ahead_s), float(HISTORY_S))
    end = now + timedelta(seconds=ahead_s)

    # (evse key, phase or None, bucket) -> values
    current: dict[tuple[str, int, str, int], list[float]] = defaultdict(list)
    power: dict[tuple[str, int, str | None, int], list[float]] = defaultdict(list)
    for spec in site.stations:
        found: list[MeterSample] = await samples.for_station(
            spec.id, since=start, until=now, limit=MAX_SAMPLES_PER_STATION
        )
        for s in found:
            b = _bucket(s.measured_at, start)
            if not 0 <= b < n:
                continue
            if s.measurand is Measurand.CURRENT_IMPORT and s.phase:
                current[(spec.id, s.evse_id, s.phase[:2], b)].append(s.value)
            elif s.measurand is Measurand.POWER_IMPORT:
                power[(spec.id, s.evse_id, s.phase[:2] if s.phase else None, b)].append(s.value)
    # (station, evse, bucket) -> A on each of the EVSE's own phases
    own: dict[tuple[str, int, int], list[float]] = {}
    for (station_id, evse_id, label, b), vals in current.items():
        placed = site.station(station_id)
        evse = next((e for e in placed.evses if e.evse_id == evse_id), None) if placed else None
        index = int(label[1]) - 1 if len(label) == 2 and label[1] in "123" else -1
        if evse is None or not 0 <= index < len(evse.phase_map):
            continue
        own.setdefault((station_id, evse_id, b), [0.0] * len(evse.phase_map))[index] += sum(vals) / len(vals)
    totals: dict[tuple[str, int, int], float] = {}
    per_phase: dict[tuple[str, int, int], float] = defaultdict(float)
    for (station_id, evse_id, on_phase, b), vals in power.items():
        mean = sum(vals) / len(vals)
        if on_phase is None:
            totals[(station_id, evse_id, b)] = mean
        else:
            per_phase[(station_id, evse_id, b)] += mean
    power_w = [0.0] * n
    measured_current = {(station_id, evse_id, b) for station_id, evse_id, _, b in current}
    for key in {*totals, *per_phase}:
        watts = totals.get(key, per_phase.get(key, 0.0))
        power_w[key[2]] += watts
        if key in measured_current:
            continue
        # No current per phase from this EVSE: its power split evenly over its phases (as the controller does).
        placed = site.station(key[0])
        evse = next((e for e in placed.evses if e.evse_id == key[1]), None) if placed else None
        if evse is not None:
            own[key] = [watts / (evse.voltage_v * len(evse.phase_map))] * len(evse.phase_map)
    phase_a = _line_currents(site, own, n)
    history = [s for s, accepted, _ in await signals.for_site(site.id, limit=2_000) if accepted and not s.circuit_id]
    phase_limit: dict[Phase, list[tuple[datetime, float | None]]] = {p: [] for p in ALL_PHASES}
    capacity_w: list[tuple[datetime, float | None]] = []
    for t in times:
        limit_w, amps = _past_limits(site, history, t)
        capacity_w.append((t, limit_w))
        for p in ALL_PHASES:
            phase_limit[p].append((t, amps.get(p)))
    if capacity is not None:
        for interval in capacity.timeline(site.id, horizon_s=ahead_s):
            at = max(interval.start, now)
            capacity_w.append((at, interval.capacity_w))
            for p in ALL_PHASES:
                phase_limit[p].append((at, interval.phase_limits_a.get(p)))
    plan_w: list[tuple[datetime, float | None]] = []
    if plan is not None:
        for i, w in enumerate(plan.site_power_w):
            at = plan.start + timedelta(seconds=i * plan.slot_s)
            if at + timedelta(seconds=plan.slot_s) > now:
                plan_w.append((max(at, now), w))
    return LoadHistory(start, now, end, times, phase_a, power_w, phase_limit, capacity_w, plan_w)


def _past_limits(site: Site, history: list[CapacitySignal], at: datetime) -> tuple[float | None, dict[Phase, float]]:
    """The capacity in force at ``at`` by the static limits and the newest signal of each kind received by then."""
    watts: list[float] = [site.capacity_w] if site.capacity_w is not None else []
    amps: dict[Phase, float] = dict(site.phase_limits_a)
    for kind in SignalKind:
        newest = next((s for s in history if s.kind is kind and s.received_at <= at), None)  # history: newest first
        if newest is None:
            continue
        for block in newest.blocks:
            if block.start <= at < block.end:
                w, a = block_bounds(block)
                if w is not None:
                    watts.append(w)
                for p, v in a.items():
                    amps[p] = min(amps.get(p, v), v)
    return (min(watts) if watts else None), amps
