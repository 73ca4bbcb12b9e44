"""Supervision of the long-running components: seen when they fail, restarted where safe, never silent.

Every component of an ems process (API server, OCPP server and its journal applier, capacity
service, controller, billing listener, MQTT adapter, the demo's simulators) runs under
``Supervisor.run``. When one fails:

- the failure is logged at ERROR with its traceback (logger ``ems.supervisor``) and counted;
- its ``ComponentHealth`` says so (``/health`` answers 503 and names it, ``/metrics`` has
  ``ems_component_up`` and ``ems_component_restarts_total``);
- a component that declares ``restartable = True`` is started again after a back-off
  (1 s doubling to 60 s, back to 1 s once it has run for 60 s), so a component that fails
  at once every time costs one attempt a minute, not a busy loop;
- one that is not restartable stays down, visibly, and the rest of the process runs on;
- the process is never taken down by a component, with one exception: a ``ConfigError``
  (bad settings, a port in use at start) stops everything, because running on without,
  say, the API is not what the operator asked for, and they must see it at once.

A component that returns before ``stop`` is set counts as a failure ("stopped on its own").
Time comes from the injected ``Clock`` (tests use ``FakeClock``).

Which components are restartable, and why it is safe, is said next to each
``restartable`` attribute; docs/reliability.md has the table. Also here: the signal handlers
and ``first`` (wait for one event or ``stop``) that ``serve`` and ``demo`` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ems.clock import Clock, SystemClock, sleep_until_set
from ems.errors import ConfigError
from ems.tasks import wait_any

log = logging.getLogger(__name__)


class ComponentState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    """Failed; waiting out its back-off before the next start."""
    FAILED = "failed"
    """Failed and not restartable: down until the process restarts."""
    STOPPED = "stopped"
    """Ended because the process is stopping."""


_NOT_STOPPED = frozenset((ComponentState.STARTING, ComponentState.RUNNING, ComponentState.RESTARTING))


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    reset_after_s: float = 60.0
    """A component that ran this long before failing starts its back-off from ``first_s`` again."""


@dataclass(slots=True)
class ComponentHealth:
    """What ``/health`` and ``/metrics`` show of one supervised component."""

    name: str
    restartable: bool
    state: ComponentState = ComponentState.STARTING
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    """The exception's type (the message and traceback are in the log: they may name addresses)."""
    last_failure_at: datetime | None = None
    retry_in_s: float | None = None

    @property
    def up(self) -> bool:
        return self.state is ComponentState.RUNNING


class Component(Protocol):
    """Anything with a ``name`` and ``run(stop)`` that returns when ``stop`` is set; it may say
    ``restartable = True`` (with why that is safe, next to the attribute)."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


class Supervisor:
    def __init__(self, clock: Clock, backoff: Backoff | None = None, *, stop_report_s: float = 5.0) -> None:
        self._clock = clock
        self.backoff = backoff or Backoff()
        self.stop_report_s = stop_report_s
        """Once ``stop`` is set, every this many wall-clock seconds (not the injected clock's: the
        demo's runs 60x) the components still running are logged, so a slow stop names its cause."""
        self.components: dict[str, ComponentHealth] = {}
        self.changed = asyncio.Event()
        """Set whenever a component's state changes (monitors and tests clear it and wait)."""

    def health(self) -> list[ComponentHealth]:
        return list(self.components.values())

    async def run_all(self, components: Sequence[Component], stop: asyncio.Event) -> None:
        """Run every component until ``stop``; each under ``run`` (restartable per its ``restartable`` attribute)."""
        for component in components:  # all shown from the start, before any task runs
            self.register(component.name, bool(getattr(component, "restartable", False)))
        report = asyncio.create_task(self._report_slow_stop(stop), name="supervisor-stop-report")
        try:
            async with asyncio.TaskGroup() as group:
                for component in components:
                    restartable = self.components[component.name].restartable
                    group.create_task(self.run(component.name, component.run, stop, restartable=restartable))
        finally:
            report.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await report

    async def _report_slow_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            await asyncio.sleep(self.stop_report_s)
            waiting = sorted(h.name for h in self.components.values() if h.state in _NOT_STOPPED)
            if waiting:
                log.warning("stopping: after %.0f s still waiting for %s", loop.time() - began, ", ".join(waiting))

    def register(self, name: str, restartable: bool) -> ComponentHealth:
        health = self.components.get(name)
        if health is None or health.restartable is not restartable:
            health = self.components[name] = ComponentHealth(name, restartable)
        return health

    async def run(
        self,
        name: str,
        run: Callable[[asyncio.Event], Awaitable[None]],
        stop: asyncio.Event,
        *,
        restartable: bool,
    ) -> None:
        """Run ``run(stop)`` until ``stop`` is set; on failure log, record, and restart or stay down.

        Returns when ``stop`` is set. Raises only ``ConfigError`` (after setting ``stop``) and
        cancellation."""
        health = self.register(name, restartable)
        delay = self.backoff.first_s
        try:
            while not stop.is_set():
                health.state = ComponentState.RUNNING
                health.retry_in_s = None
                self.changed.set()
                started = self._clock.monotonic()
                try:
                    await run(stop)
                except ConfigError:
                    health.state = ComponentState.FAILED
                    health.last_error = "ConfigError"
                    stop.set()
                    raise
                except Exception as error:
                    self._failed(health, type(error).__name__)
                    log.exception("component %s failed", name)
                else:
                    if stop.is_set():
                        break
                    self._failed(health, "stopped on its own")
                    log.error("component %s stopped on its own", name)
                if not restartable:
                    health.state = ComponentState.FAILED
                    self.changed.set()
                    log.error("component %s is not restarted; the process runs on without it (see /health)", name)
                    await stop.wait()
                    break
                if self._clock.monotonic() - started >= self.backoff.reset_after_s:
                    delay = self.backoff.first_s
                health.state = ComponentState.RESTARTING
                health.retry_in_s = delay
                self.changed.set()
                log.warning("component %s restarts in %.1f s (failure %d)", name, delay, health.failures)
                if await sleep_until_set(self._clock, delay, stop):
                    break
                delay = min(delay * self.backoff.factor, self.backoff.max_s)
                health.restarts += 1
        finally:
            if health.state is not ComponentState.FAILED:
                health.state = ComponentState.STOPPED
            health.retry_in_s = None
            self.changed.set()

    def _failed(self, health: ComponentHealth, what: str) -> None:
        health.failures += 1
        health.last_error = what
        health.last_failure_at = self._clock.now()


async def run_components(
    components: Sequence[Component], stop: asyncio.Event, supervisor: Supervisor | None = None
) -> None:
    """Run every component under ``supervisor`` (a new one on the system clock if ``None``) until ``stop``."""
    await (supervisor or Supervisor(SystemClock())).run_all(components, stop)


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``stop``; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def first(ready: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for ``ready`` or ``stop``; True if ``ready`` is set."""
    await wait_any((), ready, stop)
    return ready.is_set()
