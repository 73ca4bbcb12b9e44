"""Live site state, built from domain events: who is online, what is plugged in, what it draws.

Pure bookkeeping (no I/O, no clock): ``apply(event)`` folds one event in and says whether
it matters for planning. The controller owns one ``LiveState``; it also answers the
``SiteLoad`` port (what the site draws now) for the grid status publisher.

Power per grid phase: a station reports power per phase, current per phase, or only a
total; each EVSE phase is mapped onto the grid phase it is wired to (``EvseSpec.phase_map``).
A total without phase detail is spread evenly over the EVSE's phases. On a site with line-to-line
EVSEs or transformers the connection's line currents are the exact phasor magnitudes
(``lines.line_currents_a``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ems.controller.lines import Draw, line_currents_a, wiring_of
from ems.domain.capacity import SiteLoadReading
from ems.domain.events import (
    DomainEvent,
    MeterSampled,
    SessionEnded,
    SessionStarted,
    StationConnected,
    StationDisconnected,
    StatusChanged,
)
from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.site import EvseSpec, Site, StationSpec
from ems.domain.station import ConnectorStatus
from ems.domain.units import ALL_PHASES, NOMINAL_VOLTAGE_V, Phase
from ems.optimizer.snapshot import SITE_NODE_ID

DEFAULT_EVSE = EvseSpec(evse_id=1)
"""What a station not in the site file is assumed to be: one 3-phase 32 A EVSE per evse id."""


@dataclass
class LiveSession:
    session_id: str
    station_id: str
    evse_id: int
    started_at: datetime
    id_tag: str | None = None
    transaction_id: str | None = None
    meter_start_wh: float | None = None
    register_wh: float | None = None
    delivered_wh: float = 0.0
    power_w: float | None = None
    grid_phase_power_w: dict[Phase, float] = field(default_factory=dict)
    measured_at: datetime | None = None
    departure_at: datetime | None = None
    energy_requested_wh: float | None = None
    ev_max_power_w: float | None = None


@dataclass
class StationLive:
    station_id: str
    online: bool = False
    statuses: dict[int, ConnectorStatus] = field(default_factory=dict)


class LiveState:
    def __init__(self, sites: Sequence[Site]) -> None:
        if not sites:
            raise ValueError("LiveState needs at least one site")
        self.sites = {s.id: s for s in sites}
        self._default_site = sites[0]
        self._station_site: dict[str, Site] = {st.id: s for s in sites for st in s.stations}
        first: dict[tuple[str, str], StationSpec] = {}
        for site in sites:
            for st in site.stations:
                first.setdefault((site.id, st.id), st)
        self._station_spec: dict[str, StationSpec] = {sid: first[(s.id, sid)] for sid, s in self._station_site.items()}
        """The station's entry in the site ``site_of`` names (its first entry there), as ``Site.station`` finds it."""
        self._evse_spec: dict[tuple[str, int], EvseSpec] = {}
        """Looked up once per (station, EVSE): the site file does not change while the controller runs."""
        self.stations: dict[str, StationLive] = {}
        self.sessions: dict[str, LiveSession] = {}

    # ------------------------------------------------------------ topology

    def site_of(self, station_id: str) -> Site:
        """The site a station belongs to; stations not in any site file join the first site."""
        return self._station_site.get(station_id, self._default_site)

    def evse_spec(self, station_id: str, evse_id: int) -> EvseSpec:
        key = (station_id, evse_id)
        found = self._evse_spec.get(key)
        if found is not None:
            return found
        out = EvseSpec(evse_id=evse_id)
        spec = self._station_spec.get(station_id)
        if spec is not None:
            out = next((e for e in spec.evses if e.evse_id == evse_id), out)
        self._evse_spec[key] = out
        return out

    def station_spec(self, station_id: str) -> StationSpec | None:
        """The station in the site file (``None``: not in it)."""
        return self._station_spec.get(station_id)

    def circuit_of(self, station_id: str) -> str | None:
        spec = self._station_spec.get(station_id)
        return spec.circuit_id if spec is not None else None

    # ------------------------------------------------------------ events

    def apply(self, event: DomainEvent) -> bool:
        """Fold ``event`` in; True when it changes what the plan should be."""
        match event:
            case StationConnected(station_id=sid):
                self._station(sid).online = True
                return True
            case StationDisconnected(station_id=sid):
                self._station(sid).online = False
                return True
            case StatusChanged(station_id=sid, evse_id=evse_id, status=status):
                station = self._station(sid)
                before = station.statuses.get(evse_id)
                station.statuses[evse_id] = status
                return before != status
            case SessionStarted(session_id=session_id, station_id=sid, evse_id=evse_id, id_tag=tag, at=at):
                if session_id not in self.sessions:
                    self.sessions[session_id] = LiveSession(session_id, sid, evse_id, at, id_tag=tag)
                return True
            case SessionEnded(session_id=session_id):
                return self.sessions.pop(session_id, None) is not None
            case MeterSampled(samples=samples):
                self._meter(samples)
                return False
        return False

    def update_session(self, session: ChargingSession) -> None:
        """Details the events do not carry (meter start, departure, energy request), from storage."""
        if session.stopped_at is not None:
            self.sessions.pop(session.id, None)
            return
        live = self.sessions.get(session.id)
        if live is None:
            live = LiveSession(session.id, session.station_id, session.evse_id, session.started_at)
            self.sessions[session.id] = live
        live.id_tag = session.id_tag
        live.transaction_id = session.transaction_id
        live.meter_start_wh = session.meter_start_wh
        live.departure_at = session.departure_at
        live.energy_requested_wh = session.energy_requested_wh
        live.ev_max_power_w = session.ev_max_power_w
        live.delivered_wh = max(live.delivered_wh, session.energy_wh)

    def _station(self, station_id: str) -> StationLive:
        station = self.stations.get(station_id)
        if station is None:
            station = self.stations[station_id] = StationLive(station_id)
        return station

    def _meter(self, samples: Iterable[MeterSample]) -> None:
        by_session: dict[str, list[MeterSample]] = {}
        for s in samples:
            if s.session_id is not None and s.session_id in self.sessions and s.flag is None:
                by_session.setdefault(s.session_id, []).append(s)
        for session_id, group in by_session.items():
            live = self.sessions[session_id]
            latest = max(s.measured_at for s in group)
            if live.measured_at is not None and latest < live.measured_at:
                continue  # a late, offline-queued reading: the live picture already moved on
            current = [s for s in group if s.measured_at == latest]
            self._fold(live, current)
            live.measured_at = latest

    def _fold(self, live: LiveSession, samples: list[MeterSample]) -> None:
        evse = self.evse_spec(live.station_id, live.evse_id)
        register = [s.value for s in samples if s.measurand is Measurand.ENERGY_IMPORT_REGISTER and s.phase is None]
        if register:
            live.register_wh = register[-1]
            if live.meter_start_wh is None:
                live.meter_start_wh = register[-1]
            live.delivered_wh = max(live.delivered_wh, register[-1] - live.meter_start_wh)
        phase_power = _by_evse_phase(samples, Measurand.POWER_IMPORT)
        if not phase_power:
            phase_power = {k: a * evse.voltage_v for k, a in _by_evse_phase(samples, Measurand.CURRENT_IMPORT).items()}
        totals = [s.value for s in samples if s.measurand is Measurand.POWER_IMPORT and s.phase is None]
        if phase_power:
            live.grid_phase_power_w = {evse.phase_map[k]: w for k, w in phase_power.items() if k < len(evse.phase_map)}
            live.power_w = totals[-1] if totals else sum(phase_power.values())
        elif totals:
            live.power_w = totals[-1]
            share = totals[-1] / len(evse.phase_map)
            live.grid_phase_power_w = {p: share for p in evse.phase_map}

    # ------------------------------------------------------------ reading

    def active(self, site_id: str) -> list[LiveSession]:
        return [s for s in self.sessions.values() if self.site_of(s.station_id).id == site_id]

    def site_load(self, site_id: str) -> SiteLoadReading:
        """The ``SiteLoad`` port: measured power per grid phase of every active session of the site."""
        sessions = self.active(site_id)
        measured = [s for s in sessions if s.measured_at is not None]
        per_phase: dict[Phase, float] = {}
        for s in measured:
            for phase, w in s.grid_phase_power_w.items():
                per_phase[phase] = per_phase.get(phase, 0.0) + w
        if measured:
            for phase in ALL_PHASES:
                per_phase.setdefault(phase, 0.0)
        current = {p: w / NOMINAL_VOLTAGE_V for p, w in per_phase.items()}
        site = self.sites.get(site_id)
        wiring = wiring_of(site) if site is not None else None
        if wiring is not None and measured:
            # Line-to-line EVSEs or transformers: the connection's line currents are phasor magnitudes.
            draws: list[Draw] = []
            for s in measured:
                spec = self.evse_spec(s.station_id, s.evse_id)
                amps = [s.grid_phase_power_w.get(p, 0.0) / spec.voltage_v for p in spec.phase_map[: spec.phases]]
                draws.append((self.circuit_of(s.station_id), spec.phase_map[: spec.phases], spec.lines, amps))
            current = line_currents_a(wiring, SITE_NODE_ID, draws)
        return SiteLoadReading(
            phase_power_w=per_phase,
            phase_current_a=current,
            active_sessions=len(sessions),
            measured_at=min((s.measured_at for s in measured if s.measured_at), default=None),
        )


def _by_evse_phase(samples: Iterable[MeterSample], measurand: Measurand) -> dict[int, float]:
    """Per-phase readings keyed by the EVSE's own phase index (L1 -> 0), last one wins."""
    out: dict[int, float] = {}
    for s in samples:
        if s.measurand is measurand and s.phase:
            name = s.phase.split("-")[0]
            if name in ("L1", "L2", "L3"):
                out[int(name[1]) - 1] = s.value
    return out
