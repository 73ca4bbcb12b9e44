"""The control loop: keep live state from events, re-plan, push charging profiles.

Re-plan triggers: a session starts or ends, a station connects or goes away, a status or
capacity change, and otherwise every ``replan_interval_s`` (the horizon moves on, measured
load drifts). Events arriving together are folded into one re-plan (``debounce_s``).
The optimizer runs in a worker thread with a time limit and always returns a schedule
(LP, or a tree-respecting fallback), so the event loop never blocks on it.

Dispatch goes through ``ChargerControl`` only, ordered so that the site never goes over its
limits (``dispatch.py``: cuts first, raises once they fit; ``sending.py`` carries it out).
A capacity change is answered at once, outside the plan loop (which may be solving or
waiting for answers): proportional cuts against the new limits (``fast_cut.py``), and the
rounds still under way weigh their next raises against the new limits too; the re-plan
follows once the cuts are out.
Every EVSE of a connected station gets its fail-safe ``TxDefaultProfile`` and every session
its ``TxProfile``; all are sent again after every connect and boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from ems.bus import EventBus, Subscription
from ems.clock import Clock
from ems.controller import capabilities, fixed_loads, observed, views
from ems.controller.budget import Budget, EvsePlace, Limits
from ems.controller.capabilities import Capabilities
from ems.controller.dispatch import Desired, Dispatcher, DispatchSettings, EvseKey, Send
from ems.controller.fast_cut import proportional_cuts
from ems.controller.hygiene import usable_snapshot
from ems.controller.lines import wiring_of
from ems.controller.planning import (
    TX_PROFILE_ID_BASE,
    PlanningSettings,
    build_snapshot,
    evse_place,
    failsafe_profile,
    limits_now,
    reserve,
    tx_profile,
)
from ems.controller.sending import DispatchStats, RoundRunner
from ems.controller.state import LiveState
from ems.controller.stations import station_evses, sync_transactions
from ems.controller.views import PlanAttempt, PlanRecord
from ems.domain.capacity import CapacityInterval, SiteLoadReading
from ems.domain.commands import CommandResult
from ems.domain.composite import Hardware
from ems.domain.events import (
    CapacityChanged,
    DomainEvent,
    SessionEnded,
    SessionStarted,
    SessionUpdated,
    StationBooted,
    StationConnected,
    StationDisconnected,
)
from ems.domain.live import EvseLimitView, LiveSessionView, SitePlanView
from ems.domain.session import ChargingSession
from ems.domain.site import Site
from ems.domain.station import OcppVersion
from ems.errors import StorageError
from ems.optimizer.estimates import History, past_session
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.plan import Options
from ems.optimizer.schedule import Schedule
from ems.ports.control import ChargerControl
from ems.ports.stores import SessionHistory, SessionStore

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
    wave_wait_s: float = 5.0
    """How long raises wait for answers to the cuts before going ahead (unanswered cuts count at old limits)."""
    max_in_flight: int = 64
    """Profile sends out at once (a sliding window: the most urgent cuts are in force first)."""
    shutdown_grace_s: float = 2.0
    """At shutdown, how long sends still out may take to be answered before they are cancelled."""


class Controller:
    name = "controller"
    restartable = True
    """Safe: live state and sent profiles live in this object; the subscription is kept across a
    restart (closed only at stop), so no event is missed, and the next re-plan re-sends limits."""

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
        history: SessionHistory | None = None,
    ) -> None:
        """``state``: the live site state, when the composition root shares it (the capacity service
        reads the measured site load from it); ``None``: a new one for ``sites``. ``history``: finished
        sessions, read at start and every ``history_refresh_s`` for the departure and energy estimates
        (``None``: sessions that say nothing get the planning defaults)."""
        self.sites = tuple(sites)
        self.state = state if state is not None else LiveState(self.sites)
        self.settings = settings or ControllerSettings()
        self._bus = bus
        self._clock = clock
        self._sessions = sessions
        self._control = charger_control
        self._capacity = capacity
        self._history = history
        self.histories: dict[str, History] = {}
        """Per site: the estimates from its past sessions (absent: the planning defaults)."""
        self._dirty = asyncio.Event()
        planning = self.settings.planning
        self.dispatcher = Dispatcher(
            DispatchSettings(
                deadband_a=planning.deadband_a,
                min_interval_s=planning.min_interval_s,
                refresh_before_end_s=max(0.0, planning.profile_horizon_s - planning.refresh_s),
            )
        )
        self.runner: RoundRunner | None = None
        if charger_control is not None:
            self.runner = RoundRunner(
                dispatcher=self.dispatcher,
                control=charger_control,
                clock=clock,
                still_running=lambda session_id: session_id in self.state.sessions,
                wave_wait_s=self.settings.wave_wait_s,
                max_in_flight=self.settings.max_in_flight,
                on_answer=self._answered,
            )
        self._dispatch_lock = asyncio.Lock()
        self._retry_soon = False
        self._urgent = False
        self._limits: dict[str, Limits] = {}
        """Per site: the limits in force as last read; every wave of a round is weighed against these, so a
        capacity change (which updates them at once) holds back the raises of a round under way."""
        self._cut_due: set[str] = set()
        """Sites whose capacity changed since their last proportional cuts were computed."""
        self._cutting: dict[str, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        """Capability queries and capacity cuts under way (cancelled at stop)."""
        self.capabilities: dict[str, Capabilities] = {}
        self._versions: dict[str, OcppVersion] = {}
        self.plans: dict[str, PlanRecord] = {}
        self.attempts: dict[str, PlanAttempt] = {}
        self._planners: dict[str, RollingPlanner] = {}
        self.replans = 0
        self.replan_failures = 0
        self.replan_seconds_total = 0.0
        """Wall time of re-plans (snapshot, solve in the worker thread, dispatch), for /metrics."""
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
        return views.live_sessions(self.state.active(site_id), self.plans.get(site_id))

    def plan(self, site_id: str) -> SitePlanView | None:
        """The plan in force, with the status, error and time of the LAST ATTEMPT (which may have failed)."""
        return views.plan_view(site_id, self.plans.get(site_id), self.attempts.get(site_id), self.settings.planning)

    def evse_limits(self, site_id: str) -> list[EvseLimitView]:
        """Per EVSE: what the station has accepted and applies now, and what is still unanswered."""
        keys = [k for k in self.dispatcher.beliefs if self.state.site_of(k[0]).id == site_id]
        return views.evse_limits(
            {k: self.dispatcher.beliefs[k] for k in sorted(keys)},
            {k: evse_place(self.state, *k) for k in keys},
            self._clock.now(),
            lambda station_id: self._control is not None and self._control.is_online(station_id),
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
        if self.runner is not None:
            self.runner.open()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                consumer = group.create_task(self._consume(sub), name="controller-events")
                planner = group.create_task(self._plan_loop(), name="controller-plans")
                learner = group.create_task(self._history_loop(), name="controller-history")
                await stop.wait()
                consumer.cancel()
                planner.cancel()
                learner.cancel()
                for task in list(self._side_tasks):
                    task.cancel()
        finally:
            self._group = None
            if stop.is_set():  # a failure keeps the subscription for the restart: no event is lost
                sub.close()
                self._subscription = None
                if self.runner is not None:
                    # Sends the cancelled rounds left out: answered within the grace, or cancelled.
                    await self.runner.close(self.settings.shutdown_grace_s)

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
        elif isinstance(event, StationConnected | StationDisconnected):
            self.dispatcher.connected(event.station_id)  # everything is installed again at the next round
            if isinstance(event, StationConnected):
                self._versions[event.station_id] = event.ocpp_version
        elif isinstance(event, StationBooted):
            self.dispatcher.rebooted(event.station_id)
            # A boot may mean new firmware: capabilities are learned again, refusals forgotten.
            self.capabilities[event.station_id] = Capabilities()
            if self._group is not None:  # not awaited here: a slow station must not hold up other events
                self._side(self._group.create_task(self._learn(event.station_id), name=f"learn-{event.station_id}"))
            relevant = True
        elif isinstance(event, SessionEnded):
            sync_transactions(self.state, self.dispatcher.beliefs, event.station_id)
        elif isinstance(event, CapacityChanged):
            relevant = True
            self._urgent = True  # a lower limit must reach the stations now: no debounce
            self._capacity_change(event.site_id)
        if relevant:
            self._dirty.set()

    def _side(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    def _capacity_change(self, site_id: str) -> None:
        """Cut now, without waiting for the plan loop (it may be solving, or waiting for answers)."""
        if not any(s.id == site_id for s in self.sites):
            return
        self._cut_due.add(site_id)
        if self._group is not None and site_id not in self._cutting and self.runner is not None:
            task = self._group.create_task(self._cut_soon(site_id), name=f"capacity-cuts-{site_id}")
            self._cutting[site_id] = task
            self._side(task)

    async def _cut_soon(self, site_id: str) -> None:
        site = next(s for s in self.sites if s.id == site_id)
        try:
            while site_id in self._cut_due:  # a change that came in meanwhile is weighed again
                self._cut_due.discard(site_id)
                try:
                    await self._fast_cut(site)
                except Exception:
                    # The re-plan that follows still cuts what the plan wants; the loop must not end here.
                    log.exception("controller: proportional cuts for site %s failed", site_id)
        finally:
            self._cutting.pop(site_id, None)

    async def _learn(self, station_id: str) -> None:
        """Ask a station what it can do with profiles (answers fold into ``capabilities``)."""
        version = self._versions.get(station_id)
        if self._control is None or version is None:
            return
        try:
            result = await self._control.execute(station_id, capabilities.query(version))
        except Exception:
            # An adapter's bug must not end the controller; the station keeps the default capabilities.
            log.exception("controller: asking %s for its capabilities failed", station_id)
            return
        caps = capabilities.learn(self.capabilities.get(station_id, Capabilities()), version, result)
        self.capabilities[station_id] = caps
        log.info("controller: %s capabilities %s", station_id, caps)
        self._dirty.set()

    def _answered(self, send: Send, result: CommandResult) -> None:
        before = self.capabilities.get(send.station_id, Capabilities())
        after = capabilities.answered(before, send.command, result.status)
        self.capabilities[send.station_id] = after
        if before.takes_profiles() and not after.takes_profiles():
            log.warning(
                "controller: %s will not take profiles (%s): planned as a fixed load at what it may apply",
                send.station_id,
                result.detail or result.status.value,
            )
        if after.refusals > before.refusals or before.takes_profiles() != after.takes_profiles():
            self._dirty.set()  # try again soon, or plan around it

    async def _load_session(self, session_id: str) -> None:
        try:
            session = await self._sessions.get(session_id)
        except StorageError as exc:
            log.warning("controller: session %s not readable now (%s); planning with what events said", session_id, exc)
            return
        if session is not None:
            self.state.update_session(session)

    async def _history_loop(self) -> None:
        while self._history is not None:
            await self.load_history()
            await asyncio.sleep(self.settings.planning.history_refresh_s)

    async def load_history(self) -> None:
        """Read the finished sessions of the last ``history_days`` and rebuild every site's estimates.

        A failure keeps the estimates there were (logged; tried again at the next refresh)."""
        if self._history is None:
            return
        planning = self.settings.planning
        try:
            since = self._clock.now() - timedelta(days=planning.history_days)
            finished = await self._history.finished(since=since)
        except Exception:
            log.exception("controller: past sessions not readable now; estimates kept as they were")
            return
        by_site: dict[str, list[ChargingSession]] = {}
        for session in finished:
            by_site.setdefault(self.state.site_of(session.station_id).id, []).append(session)
        for site in self.sites:
            self.histories[site.id] = History(
                past_session(s.id_tag, s.started_at, s.stopped_at, s.energy_wh, site.timezone)
                for s in by_site.get(site.id, ())
                if s.stopped_at is not None
            )
        log.info("controller: estimates from %d past session(s)", len(finished))
        self._dirty.set()

    async def _plan_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races the event.
            wait_s = self.settings.replan_interval_s
            if self._retry_soon:
                # Raises were held back (waiting for cuts, or their minimum interval): dispatch again soon.
                wait_s = min(wait_s, max(self.settings.planning.min_interval_s, self.settings.wave_wait_s))
                self._retry_soon = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._dirty.wait()
            if not self._urgent:
                await asyncio.sleep(self.settings.debounce_s)
            self._urgent = False
            self._dirty.clear()
            for site in self.sites:
                started = time.perf_counter()
                try:
                    await self.replan(site.id)
                except Exception:
                    # One site's failure must not stop the others or the loop; it is logged with its cause.
                    self.replan_failures += 1
                    log.exception("controller: re-plan of site %s failed", site.id)
                finally:
                    self.replan_seconds_total += time.perf_counter() - started

    # ------------------------------------------------------------ planning

    async def replan(self, site_id: str) -> PlanRecord | None:
        """Plan ``site_id`` now and dispatch; the attempt (its status, error, sessions left out) is kept."""
        cutting = self._cutting.get(site_id)
        if cutting is not None:
            # The capacity cuts go out first, alone: the solve would only slow them down. (``wait``, so that
            # cancelling the re-plan does not cancel the cuts.)
            await asyncio.wait({cutting})
        now = self._clock.now()
        try:
            return await self._replan(site_id, now)
        except Exception as exc:
            self.attempts[site_id] = PlanAttempt(site_id, now, "ERROR", f"{type(exc).__name__}: {exc}")
            self.replanned.set()
            raise

    async def _replan(self, site_id: str, now: datetime) -> PlanRecord | None:
        site = next(s for s in self.sites if s.id == site_id)
        planning = self.settings.planning
        if site_id in self._cut_due:  # a change not cut yet (no running loop to cut it at once)
            self._cut_due.discard(site_id)
            await self._fast_cut(site)
            now = self._clock.now()
        online, places = self._prepare(site)
        timelines = self._timelines(site, planning)
        seen = observed.draws(site.id, self.state, self.dispatcher.beliefs)
        history = self.histories.get(site_id)
        self._set_limits(site_id, limits_now(site, now, planning, timelines))
        fixed, exclude = fixed_loads.around_plan(
            site.id, self.state, self.dispatcher.beliefs, self.capabilities, online, places, now
        )
        usable = usable_snapshot(
            lambda ex: build_snapshot(site, self.state, now, planning, timelines, ex, draws=seen, history=history),
            exclude,
        )
        left_out = tuple(f"{sid}: {why}" for sid, why in sorted(usable.left_out.items()))
        for line in left_out:
            log.warning("controller: site %s: session %s; left out of the plan, the rest is planned", site_id, line)
        if usable.left_out:
            fixed += fixed_loads.left_out(self.state, self.dispatcher.beliefs, usable.left_out, places, now)
        if usable.problems:
            error = "invalid optimizer snapshot: " + "; ".join(usable.problems)
            self.attempts[site_id] = PlanAttempt(site_id, now, "ERROR", error, left_out)
            log.error("controller: site %s not planned: %s", site_id, error)
            await self._dispatch(site, None, online, places)  # defaults and re-installs still go out
            self.replanned.set()
            return None
        if not usable.snapshot.sessions:
            self.plans.pop(site_id, None)
            self.attempts[site_id] = PlanAttempt(site_id, now, "IDLE", None, left_out)
            waiting = self._uncontrolled(exclude)
            sent, _ = await self._dispatch(site, None, online, places)
            if sent and waiting:
                self._dirty.set()  # EVSEs that just accepted their first profile join the next plan
            self.replanned.set()
            return None
        snapshot = reserve(usable.snapshot, fixed, wiring_of(site))
        planner = self._planners.get(site_id)
        if planner is None:
            planner = self._planners[site_id] = RollingPlanner(Options(time_limit_s=planning.solve_time_limit_s))
        # Each site's planner warm-starts from its previous plan; one re-plan per site at a time (the loop).
        schedule = await asyncio.to_thread(planner.plan, snapshot)
        self.replans += 1
        solver_error = schedule.stats.get("error")
        self.attempts[site_id] = PlanAttempt(
            site_id, now, schedule.status.value, None if solver_error is None else str(solver_error), left_out
        )
        waiting = self._uncontrolled(exclude)
        sent, rejected = await self._dispatch(site, schedule, online, places)
        if sent and waiting:
            self._dirty.set()  # EVSEs that just accepted their first profile join the next plan
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

    def _uncontrolled(self, exclude: frozenset[str]) -> bool:
        sessions = (self.state.sessions.get(sid) for sid in exclude)
        return any(
            s is not None and not fixed_loads.controlled(self.dispatcher.beliefs.get((s.station_id, s.evse_id)))
            for s in sessions
        )

    async def _fast_cut(self, site: Site) -> None:
        """A capacity change: every EVSE under a node that is now over is cut, in proportion, before any solve.

        Weighed against the limits in force now (no snapshot of the sessions: only the tree's limits),
        on the hot path of a drop: everything here is one pass over the site's EVSEs."""
        if self.runner is None:
            return
        now = self._clock.now()
        planning = self.settings.planning
        online, places = self._prepare(site)
        limits = limits_now(site, now, planning, self._timelines(site, planning))
        self._set_limits(site.id, limits)  # rounds under way weigh their next raises against these
        spec = self.state.evse_spec
        controlled = {sid for sid in online if self.capabilities.get(sid, Capabilities()).takes_profiles()}
        sessions = [
            ((s.station_id, s.evse_id), s.session_id, s.transaction_id, spec(s.station_id, s.evse_id).min_current_a)
            for s in self.state.active(site.id)
            if s.station_id in controlled and s.transaction_id is not None
        ]
        budget = self.dispatcher.budget(limits, places, now)
        scaled = {key for key, *_ in sessions}
        fixed = Budget(limits, budget.grid)  # idle EVSEs and the like keep what they may draw: scale the rest
        for key, belief in self.dispatcher.beliefs.items():
            if key in places and key not in scaled:
                fixed.book(key, belief.bound(now), places[key])
        cuts = proportional_cuts(
            budget,
            self.dispatcher.beliefs,
            places,
            sessions,
            now,
            planning.profile_horizon_s,
            TX_PROFILE_ID_BASE,
            fixed,
        )
        if not cuts:
            return
        desired = []
        for d in cuts:  # as each station takes profiles (W, stack level, periods): each only ever lower
            evse = spec(d.station_id, d.command.evse_id)
            caps = self.capabilities.get(d.station_id, Capabilities())
            desired.append(replace(d, command=capabilities.shape(d.command, caps, evse.voltage_v, evse.phases)))
        log.info("controller: site %s over its new capacity: %d proportional cut(s) first", site.id, len(desired))
        # Not under the dispatch lock: a round under way may hold it for seconds, waiting for answers, and
        # cuts are safe whatever else is in flight. Built below each EVSE's bound, they need no weighing.
        await self.runner.cut(desired)

    def _set_limits(self, site_id: str, limits: Limits) -> None:
        """Keep the limits read last (a re-plan's snapshot may be older than a capacity change's cuts)."""
        kept = self._limits.get(site_id)
        if kept is None or limits.start >= kept.start:
            self._limits[site_id] = limits

    def _site_limits(self, site_id: str) -> Callable[[], Limits]:
        return lambda: self._limits[site_id]

    def _timelines(self, site: Site, planning: PlanningSettings) -> dict[str | None, list[CapacityInterval]]:
        if self._capacity is None:
            return {}
        horizon_s = planning.slot_s * planning.horizon_slots
        out: dict[str | None, list[CapacityInterval]] = {None: self._capacity.timeline(site.id, horizon_s=horizon_s)}
        for c in site.circuits:
            out[c.id] = self._capacity.timeline(site.id, c.id, horizon_s=horizon_s)
        return out

    # ------------------------------------------------------------ dispatch

    def stats(self) -> DispatchStats:
        return self.runner.stats if self.runner is not None else DispatchStats()

    # Every profile sent through ChargerControl (plans and fail-safes) and how stations answered, for /metrics.
    @property
    def profiles_sent(self) -> int:
        return self.stats().sent

    @property
    def profiles_accepted(self) -> int:
        return self.stats().accepted

    @property
    def profiles_refused(self) -> int:
        """Refused, unanswered or not delivered."""
        stats = self.stats()
        return stats.refused + stats.timeouts + stats.offline

    def _prepare(self, site: Site) -> tuple[list[str], dict[EvseKey, EvsePlace]]:
        """The site's online stations (each EVSE with a belief, its transaction synced), and where EVSEs sit."""
        candidates = {s.id for s in site.stations} | set(self.state.stations)
        candidates |= {s.station_id for s in self.state.sessions.values()}
        online = sorted(
            sid
            for sid in candidates
            if self.state.site_of(sid).id == site.id and self._control is not None and self._control.is_online(sid)
        )
        for station_id in online:
            if not self.capabilities.get(station_id, Capabilities()).takes_profiles():
                continue  # it refuses them: planned around (until it boots again and is asked afresh)
            for evse_id in station_evses(site, self.state, station_id):
                spec = self.state.evse_spec(station_id, evse_id)
                self.dispatcher.belief(station_id, evse_id, Hardware(spec.max_current_a, spec.phases, spec.voltage_v))
        sync_transactions(
            self.state,
            self.dispatcher.beliefs,
            {k[0] for k in self.dispatcher.beliefs if self.state.site_of(k[0]).id == site.id},
        )
        places = {
            key: evse_place(self.state, *key)
            for key in self.dispatcher.beliefs
            if self.state.site_of(key[0]).id == site.id
        }
        return online, places

    def _desired(self, site: Site, schedule: Schedule | None, online: list[str]) -> list[Desired]:
        """Every profile the plan wants installed: fail-safe defaults, then TxProfiles."""
        planning = self.settings.planning
        evse_count = sum(len(s.evses) for s in site.stations)
        desired: list[Desired] = []
        busy = {(s.station_id, s.evse_id) for s in self.state.sessions.values()}
        for station_id in online:
            if not self.capabilities.get(station_id, Capabilities()).takes_profiles():
                continue  # it refuses them: planned around (until it boots again and is asked afresh)
            for evse_id in station_evses(site, self.state, station_id):
                spec = self.state.evse_spec(station_id, evse_id)
                command = failsafe_profile(site, spec, evse_count, busy=(station_id, evse_id) in busy)
                caps = self.capabilities.get(station_id, Capabilities())
                desired.append(Desired(station_id, capabilities.shape(command, caps, spec.voltage_v, spec.phases)))
        if schedule is not None:
            for session in self.state.active(site.id):
                if session.station_id not in online:
                    continue
                spec = self.state.evse_spec(session.station_id, session.evse_id)
                tx = tx_profile(schedule, session, spec, planning)
                if tx is not None and tx.periods:
                    caps = self.capabilities.get(session.station_id, Capabilities())
                    tx = capabilities.shape(tx, caps, spec.voltage_v, spec.phases)
                    desired.append(Desired(session.station_id, tx, session.session_id))
        return desired

    async def _dispatch(
        self,
        site: Site,
        schedule: Schedule | None,
        online: list[str],
        places: dict[EvseKey, EvsePlace],
    ) -> tuple[int, int]:
        if self._control is None or self.runner is None:
            return 0, 0
        async with self._dispatch_lock:
            desired = self._desired(site, schedule, online)
            outcome = await self.runner.run(desired, self._site_limits(site.id), places)
        if outcome.held or outcome.throttled:
            self._retry_soon = True
        return outcome.sent, outcome.refused
