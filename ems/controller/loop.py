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
from datetime import datetime, timedelta

from ems.bus import EventBus, Subscription
from ems.clock import Clock
from ems.controller import fixed_loads, observed, profiles, views
from ems.controller.budget import EvsePlace, Limits
from ems.controller.capability_book import CapabilityBook
from ems.controller.dispatch import Dispatcher, DispatchSettings, EvseKey, Send
from ems.controller.hygiene import usable_snapshot
from ems.controller.lines import wiring_of
from ems.controller.planning import build_snapshot, evse_place, limits_now, reserve, site_histories
from ems.controller.sending import DispatchStats, RoundRunner
from ems.controller.settings import CapacityTimelines, ControllerSettings, site_timelines
from ems.controller.state import LiveState
from ems.controller.stations import sync_transactions
from ems.controller.views import PlanAttempt, PlanRecord
from ems.domain.capacity import SiteLoadReading
from ems.domain.commands import CommandResult
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
from ems.domain.site import Site
from ems.errors import StorageError
from ems.optimizer.estimates import History
from ems.optimizer.mpc import RollingPlanner
from ems.optimizer.plan import Options
from ems.optimizer.schedule import Schedule
from ems.ports.control import ChargerControl
from ems.ports.stores import SessionHistory, SessionStore

log = logging.getLogger(__name__)


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
        self.book = CapabilityBook(charger_control)
        self.capabilities = self.book.known
        """Per station, what it can do with profiles (the book's, shared)."""
        self.plans: dict[str, PlanRecord] = {}
        self.attempts: dict[str, PlanAttempt] = {}
        self.unplanned_since: dict[str, datetime] = {}
        """Per site with sessions and no plan in force: when its re-plans started failing (``/health``)."""
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
                self.book.connected(event.station_id, event.ocpp_version)
        elif isinstance(event, StationBooted):
            self.dispatcher.rebooted(event.station_id)
            self.book.booted(event.station_id)
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
        if await self.book.learn(station_id):
            self._dirty.set()

    def _answered(self, send: Send, result: CommandResult) -> None:
        if self.book.answered(send, result):
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
        self.histories.update(site_histories(finished, self.sites, self.state))
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
            self._failed(site_id, now)
            self.replanned.set()
            raise

    def _failed(self, site_id: str, now: datetime) -> None:
        """A re-plan made no plan: with none in force, the site is uncontrolled from now on (``/health``)."""
        if site_id not in self.plans:
            self.unplanned_since.setdefault(site_id, now)

    async def _replan(self, site_id: str, now: datetime) -> PlanRecord | None:
        site = next(s for s in self.sites if s.id == site_id)
        planning = self.settings.planning
        if site_id in self._cut_due:  # a change not cut yet (no running loop to cut it at once)
            self._cut_due.discard(site_id)
            await self._fast_cut(site)
            now = self._clock.now()
        online, places = self._prepare(site)
        timelines = site_timelines(self._capacity, site, planning)
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
            self._failed(site_id, now)
            log.error("controller: site %s not planned: %s", site_id, error)
            await self._dispatch(site, None, online, places)  # defaults and re-installs still go out
            self.replanned.set()
            return None
        if not usable.snapshot.sessions:
            self.plans.pop(site_id, None)
            self.unplanned_since.pop(site_id, None)
            self.attempts[site_id] = PlanAttempt(site_id, now, "IDLE", None, left_out)
            await self._dispatch(site, None, online, places, exclude)
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
        sent, rejected = await self._dispatch(site, schedule, online, places, exclude)
        record = PlanRecord(site_id, now, schedule, sent, rejected)
        self.plans[site_id] = record
        self.unplanned_since.pop(site_id, None)
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

    async def _fast_cut(self, site: Site) -> None:
        """A capacity change: every EVSE under a node that is now over is cut, in proportion, before any solve.

        Weighed against the limits in force now (no snapshot of the sessions: only the tree's limits),
        on the hot path of a drop: everything here is one pass over the site's EVSEs."""
        if self.runner is None:
            return
        now = self._clock.now()
        planning = self.settings.planning
        online, places = self._prepare(site)
        limits = limits_now(site, now, planning, site_timelines(self._capacity, site, planning))
        self._set_limits(site.id, limits)  # rounds under way weigh their next raises against these
        desired = profiles.capacity_cuts(
            site, self.state, self.dispatcher, self.capabilities, online, places, limits, now, planning
        )
        if not desired:
            return
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
        """The site's online stations, each EVSE of those that take profiles with a belief, and where EVSEs sit."""
        return profiles.under_control(site, self.state, self.dispatcher, self.capabilities, self._control)

    async def _dispatch(
        self,
        site: Site,
        schedule: Schedule | None,
        online: list[str],
        places: dict[EvseKey, EvsePlace],
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[int, int]:
        """Send what the plan wants (``None``: the fail-safe defaults only); (sent, refused). ``exclude``: the
        sessions planned around; when one of them waited for its EVSE's first profile and profiles went out,
        re-plan soon."""
        if self._control is None or self.runner is None:
            return 0, 0
        waiting = fixed_loads.uncontrolled(self.state, self.dispatcher.beliefs, exclude)
        async with self._dispatch_lock:
            desired = profiles.desired(site, schedule, online, self.state, self.capabilities, self.settings.planning)
            outcome = await self.runner.run(desired, self._site_limits(site.id), places)
        if outcome.held or outcome.throttled:
            self._retry_soon = True
        if outcome.sent and waiting:
            self._dirty.set()  # EVSEs that just accepted their first profile join the next plan
        return outcome.sent, outcome.refused
