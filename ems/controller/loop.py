"""The control loop: keep live state from events, re-plan, push charging profiles.

Re-plan triggers: a session starts or ends, a station connects or goes away, a status or
capacity change, and otherwise every ``replan_interval_s`` (the horizon moves on, measured
load drifts). Events arriving together are folded into one re-plan (``debounce_s``).
The optimizer runs in a worker thread with a time limit and always returns a schedule
(LP, or a tree-respecting fallback), so the event loop never blocks on it.

Dispatch goes through ``ChargerControl`` only; a profile counts as in force when the
station answered ACCEPTED. On connect, each EVSE gets its fail-safe ``TxDefaultProfile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ems.bus import EventBus, Subscription
from ems.clock import Clock
from ems.controller.planning import (
    PlanningSettings,
    SentProfile,
    build_snapshot,
    failsafe_profile,
    should_send,
    tx_profile,
)
from ems.controller.state import LiveState
from ems.domain.capacity import CapacityInterval, SiteLoadReading
from ems.domain.commands import CommandResult, CommandStatus, SetChargingLimit
from ems.domain.events import (
    CapacityChanged,
    DomainEvent,
    SessionStarted,
    SessionUpdated,
    StationBooted,
)
from ems.domain.live import LiveSessionView, SitePlanView
from ems.domain.site import Site
from ems.errors import StorageError
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.plan import Options
from ems.optimizer.schedule import Schedule
from ems.ports.control import ChargerControl
from ems.ports.stores import SessionStore

log = logging.getLogger(__name__)


class CapacityTimelines(Protocol):
    """What the grid-capacity service offers the controller (``ems.services.capacity.CapacityService``)."""

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]: ...


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    planning: PlanningSettings = field(default_factory=PlanningSettings)
    replan_interval_s: float = 60.0
    debounce_s: float = 0.25
    """Fold a burst of events (a fleet reconnecting) into one re-plan."""


@dataclass(frozen=True, slots=True)
class PlanRecord:
    site_id: str
    planned_at: datetime
    schedule: Schedule
    profiles_sent: int
    profiles_rejected: int


class Controller:
    name = "controller"

    def __init__(
        self,
        *,
        sites: Sequence[Site],
        bus: EventBus,
        clock: Clock,
        sessions: SessionStore,
        charger_control: ChargerControl | None,
        capacity: CapacityTimelines | None = None,
        settings: ControllerSettings | None = None,
        state: LiveState | None = None,
    ) -> None:
        """``state``: the live site state, when the composition root shares it (the capacity service
        reads the measured site load from it); ``None``: a new one for ``sites``."""
        self.sites = tuple(sites)
        self.state = state if state is not None else LiveState(self.sites)
        self.settings = settings or ControllerSettings()
        self._bus = bus
        self._clock = clock
        self._sessions = sessions
        self._control = charger_control
        self._capacity = capacity
        self._dirty = asyncio.Event()
        self._sent: dict[tuple[str, int], SentProfile] = {}
        self.plans: dict[str, PlanRecord] = {}
        self._planners: dict[str, RollingPlanner] = {}
        self.replans = 0
        self.replanned = asyncio.Event()
        """Set after every re-plan (tests and monitors clear it and wait)."""
        self._subscription: Subscription[DomainEvent] | None = None
        self._group: asyncio.TaskGroup | None = None

    # ------------------------------------------------------------ ports

    def site_load(self, site_id: str) -> SiteLoadReading:
        return self.state.site_load(site_id)

    def latest_plan(self, site_id: str) -> PlanRecord | None:
        return self.plans.get(site_id)

    def live_sessions(self, site_id: str) -> list[LiveSessionView]:
        record = self.plans.get(site_id)
        out: list[LiveSessionView] = []
        for s in sorted(self.state.active(site_id), key=lambda x: x.started_at):
            planned: float | None = None
            limited: tuple[str, ...] = ()
            if record is not None and s.session_id in record.schedule.session_ids:
                i = record.schedule.session_ids.index(s.session_id)
                planned = float(record.schedule.power_w[i][0])
                limited = record.schedule.limited_by[i]
            out.append(
                LiveSessionView(
                    session_id=s.session_id,
                    station_id=s.station_id,
                    evse_id=s.evse_id,
                    started_at=s.started_at,
                    power_w=s.power_w,
                    delivered_wh=s.delivered_wh,
                    departure_at=s.departure_at,
                    energy_requested_wh=s.energy_requested_wh,
                    planned_power_w=planned,
                    limited_by=limited,
                )
            )
        return out

    def plan(self, site_id: str) -> SitePlanView | None:
        record = self.plans.get(site_id)
        if record is None:
            return None
        sch = record.schedule
        return SitePlanView(
            site_id=site_id,
            planned_at=record.planned_at,
            status=sch.status.value,
            algorithm=sch.algorithm.value,
            solve_s=sch.solve_s,
            start=sch.start,
            slot_s=sch.slot_s,
            site_power_w=tuple(float(v) for v in sch.site_power_w),
            sessions=len(sch.session_ids),
            fully_served=sch.fully_served(),
            unmet_wh=float(sch.unmet_wh.sum()),
            profiles_sent=record.profiles_sent,
            profiles_rejected=record.profiles_rejected,
            violations=tuple(v.message for v in sch.violations),
        )

    # ------------------------------------------------------------ running

    def subscribe(self) -> None:
        """Subscribe now, so no event published before ``run`` starts is missed."""
        if self._subscription is None:
            self._subscription = self._bus.subscribe(name="controller", maxsize=50_000)

    async def run(self, stop: asyncio.Event) -> None:
        self.subscribe()
        assert self._subscription is not None
        sub = self._subscription
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                consumer = group.create_task(self._consume(sub), name="controller-events")
                planner = group.create_task(self._plan_loop(), name="controller-plans")
                await stop.wait()
                consumer.cancel()
                planner.cancel()
        finally:
            self._group = None
            sub.close()
            self._subscription = None

    async def _consume(self, sub: Subscription[DomainEvent]) -> None:
        while True:
            event = await sub.get()
            await self.handle(event)

    async def handle(self, event: DomainEvent) -> None:
        """Fold one event in (public for tests and for replaying history)."""
        relevant = self.state.apply(event)
        if isinstance(event, SessionStarted | SessionUpdated):
            await self._load_session(event.session_id)
            relevant = True
        elif isinstance(event, StationBooted):
            # Not awaited here: a slow station must not hold up every other event.
            if self._group is not None:
                self._group.create_task(self._send_failsafe(event.station_id), name=f"failsafe-{event.station_id}")
            else:
                await self._send_failsafe(event.station_id)
        elif isinstance(event, CapacityChanged):
            relevant = True
        if relevant:
            self._dirty.set()

    async def _load_session(self, session_id: str) -> None:
        try:
            session = await self._sessions.get(session_id)
        except StorageError as exc:
            log.warning("controller: session %s not readable now (%s); planning with what events said", session_id, exc)
            return
        if session is not None:
            self.state.update_session(session)

    async def _plan_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races the event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.replan_interval_s):
                    await self._dirty.wait()
            await asyncio.sleep(self.settings.debounce_s)
            self._dirty.clear()
            for site in self.sites:
                try:
                    await self.replan(site.id)
                except Exception:
                    # One site's failure must not stop the others or the loop; it is logged with its cause.
                    log.exception("controller: re-plan of site %s failed", site.id)

    # ------------------------------------------------------------ planning

    async def replan(self, site_id: str) -> PlanRecord | None:
        site = next(s for s in self.sites if s.id == site_id)
        if not self.state.active(site_id):
            self.plans.pop(site_id, None)
            return None
        now = self._clock.now()
        planning = self.settings.planning
        snapshot = build_snapshot(site, self.state, now, planning, self._timelines(site, planning))
        planner = self._planners.get(site_id)
        if planner is None:
            planner = self._planners[site_id] = RollingPlanner(Options(time_limit_s=planning.solve_time_limit_s))
        # Each site's planner warm-starts from its previous plan; one re-plan per site at a time (the loop).
        schedule = await asyncio.to_thread(planner.plan, snapshot)
        self.replans += 1
        sent, rejected = await self._dispatch(site, schedule)
        record = PlanRecord(site_id, now, schedule, sent, rejected)
        self.plans[site_id] = record
        self.replanned.set()
        log.info(
            "controller: site %s planned %d session(s): %s in %.0f ms, %d profile(s) sent, %d refused",
            site_id,
            len(schedule.session_ids),
            schedule.status.value,
            schedule.solve_s * 1000,
            sent,
            rejected,
        )
        return record

    def _timelines(self, site: Site, planning: PlanningSettings) -> dict[str | None, list[CapacityInterval]]:
        if self._capacity is None:
            return {}
        horizon_s = planning.slot_s * planning.horizon_slots
        out: dict[str | None, list[CapacityInterval]] = {None: self._capacity.timeline(site.id, horizon_s=horizon_s)}
        for c in site.circuits:
            out[c.id] = self._capacity.timeline(site.id, c.id, horizon_s=horizon_s)
        return out

    async def _dispatch(self, site: Site, schedule: Schedule) -> tuple[int, int]:
        if self._control is None:
            return 0, 0
        planning = self.settings.planning
        now_s = self._clock.monotonic()
        pending: list[tuple[str, int, SetChargingLimit]] = []
        for session in self.state.active(site.id):
            if not self._control.is_online(session.station_id):
                continue
            spec = self.state.evse_spec(session.station_id, session.evse_id)
            command = tx_profile(schedule, session, spec, planning)
            if command is None or not command.periods:
                continue
            if should_send(command, self._sent.get((session.station_id, session.evse_id)), now_s, planning):
                pending.append((session.station_id, session.evse_id, command))
        results = await asyncio.gather(*(self._execute(sid, cmd) for sid, _, cmd in pending))
        sent = rejected = 0
        for (station_id, evse_id, command), result in zip(pending, results, strict=True):
            if result.status is CommandStatus.ACCEPTED:
                sent += 1
                self._sent[(station_id, evse_id)] = SentProfile(command.periods[0].limit, now_s)
            else:
                rejected += 1
                log.warning(
                    "controller: %s evse %d refused its profile: %s %s",
                    station_id,
                    evse_id,
                    result.status.value,
                    result.detail or "",
                )
        return sent, rejected

    async def _execute(self, station_id: str, command: SetChargingLimit) -> CommandResult:
        """``ChargerControl.execute``, with an adapter's own bug reported as a refusal instead of
        taking the control loop (and with it every other station's limits) down."""
        assert self._control is not None
        try:
            return await self._control.execute(station_id, command)
        except Exception as exc:
            log.exception("controller: sending %s to %s failed inside the adapter", command.purpose, station_id)
            return CommandResult(CommandStatus.REJECTED, f"adapter error: {type(exc).__name__}")

    async def _send_failsafe(self, station_id: str) -> None:
        if self._control is None:
            return
        site = self.state.site_of(station_id)
        spec = site.station(station_id)
        if spec is None:
            return
        evse_count = sum(len(s.evses) for s in site.stations)
        for evse in spec.evses:
            command = failsafe_profile(site, evse, evse_count)
            if command is None:
                continue
            result = await self._execute(station_id, command)
            if result.status is not CommandStatus.ACCEPTED:
                log.warning(
                    "controller: %s evse %d refused its fail-safe profile: %s",
                    station_id,
                    evse.evse_id,
                    result.status.value,
                )
