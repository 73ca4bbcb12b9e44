"""Supervision (``ems.supervisor``, used by ``ems.app.run_components``): a failing component is
logged with its traceback, shown, restarted with back-off where safe, and never takes the
process down; only a ConfigError stops everything. Time is a FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import pytest

from ems.clock import FakeClock
from ems.errors import ConfigError
from ems.supervisor import Backoff, ComponentState, Supervisor, run_components


class Waits:
    restartable = False

    def __init__(self, name: str = "waits") -> None:
        self.name = name
        self.stopped_cleanly = False

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopped_cleanly = True


class Crashes:
    """Fails ``times`` times (right after starting), then runs until stopped."""

    name = "crashes"

    def __init__(self, times: int, *, restartable: bool = True, error: Exception | None = None) -> None:
        self.times = times
        self.restartable = restartable
        self.error = error or RuntimeError("boom")
        self.starts = 0
        self.running = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.starts += 1
        await asyncio.sleep(0)
        if self.starts <= self.times:
            raise self.error
        self.running.set()
        await stop.wait()


class Returns:
    name = "returns"

    async def run(self, stop: asyncio.Event) -> None:
        return None


async def _until(supervisor: Supervisor, condition: Callable[[], bool], within_s: float = 2.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            supervisor.changed.clear()
            with contextlib.suppress(KeyError):  # not registered yet: run_all has not started
                if condition():
                    for _ in range(3):  # yield: let the supervisor reach its back-off sleep on the fake clock
                        await asyncio.sleep(0)
                    return
            await supervisor.changed.wait()


async def test_stop_event_ends_every_component() -> None:
    stop = asyncio.Event()
    a, b = Waits("a"), Waits("b")
    supervisor = Supervisor(FakeClock())
    task = asyncio.create_task(run_components([a, b], stop, supervisor))
    await _until(supervisor, lambda: all(h.up for h in supervisor.health()) and len(supervisor.health()) == 2)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert a.stopped_cleanly and b.stopped_cleanly


async def test_a_crash_is_logged_shown_and_restarted_with_back_off_while_the_rest_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, Backoff(first_s=1.0, max_s=4.0, factor=2.0))
    stop = asyncio.Event()
    waiting, crashing = Waits(), Crashes(times=4)
    task = asyncio.create_task(supervisor.run_all([waiting, crashing], stop))
    health = lambda: supervisor.components["crashes"]  # noqa: E731
    delays = []
    for failure in range(1, 5):
        await _until(
            supervisor, lambda f=failure: health().failures == f and health().state is ComponentState.RESTARTING
        )
        assert health().last_error == "RuntimeError"
        delays.append(health().retry_in_s)
        assert crashing.starts == failure, "no restart before the back-off has passed"
        clock.advance(health().retry_in_s or 0)
    await asyncio.wait_for(crashing.running.wait(), 2)
    assert delays == [1.0, 2.0, 4.0, 4.0]
    assert health().state is ComponentState.RUNNING and health().restarts == 4
    assert supervisor.components["waits"].state is ComponentState.RUNNING and not task.done()
    tracebacks = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(tracebacks) == 4 and "component crashes failed" in tracebacks[0].getMessage()
    stop.set()
    await asyncio.wait_for(task, 1)
    assert waiting.stopped_cleanly and health().state is ComponentState.STOPPED


async def test_a_component_that_is_not_restartable_stays_down_visibly_and_the_process_runs_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(FakeClock())
    stop = asyncio.Event()
    waiting, crashing = Waits(), Crashes(times=1, restartable=False)
    task = asyncio.create_task(supervisor.run_all([waiting, crashing], stop))
    await _until(supervisor, lambda: supervisor.components["crashes"].state is ComponentState.FAILED)
    await asyncio.sleep(0.01)
    assert not stop.is_set() and not task.done() and crashing.starts == 1
    assert not supervisor.components["crashes"].up
    assert any("is not restarted" in r.getMessage() for r in caplog.records)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert waiting.stopped_cleanly
    assert supervisor.components["crashes"].state is ComponentState.FAILED, "still shown as failed"


async def test_a_component_that_returns_early_counts_as_a_failure() -> None:
    supervisor = Supervisor(FakeClock())
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run_all([Waits(), Returns()], stop))
    await _until(supervisor, lambda: supervisor.components["returns"].failures == 1)
    assert supervisor.components["returns"].last_error == "stopped on its own"
    assert not stop.is_set()
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_a_config_error_stops_the_process() -> None:
    stop = asyncio.Event()
    waiting = Waits()
    crashing = Crashes(times=1, error=ConfigError("cannot serve the API on 127.0.0.1:1 (address in use?)"))
    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(run_components([waiting, crashing], stop), 1)
    assert info.group_contains(ConfigError)
    assert stop.is_set() and waiting.stopped_cleanly


async def test_back_off_starts_over_after_a_long_healthy_run() -> None:
    clock = FakeClock()
    supervisor = Supervisor(clock, Backoff(first_s=1.0, max_s=60.0, reset_after_s=60.0))
    stop = asyncio.Event()

    class FailsAfter:
        name = "flaky"
        restartable = True
        starts = 0

        async def run(self, stop: asyncio.Event) -> None:
            self.starts += 1
            if self.starts == 3:
                clock.advance(120)  # this run was healthy for two minutes
            raise RuntimeError("flaky")

    flaky = FailsAfter()
    task = asyncio.create_task(supervisor.run_all([flaky], stop))
    health = lambda: supervisor.components["flaky"]  # noqa: E731
    seen = []
    for failure in range(1, 4):
        await _until(
            supervisor, lambda f=failure: health().failures == f and health().state is ComponentState.RESTARTING
        )
        seen.append(health().retry_in_s)
        clock.advance(health().retry_in_s or 0)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert seen == [1.0, 2.0, 1.0]


class SlowToStop:
    name = "slow"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.release.wait()  # e.g. a connection that takes its time to close


class _Heard(logging.Handler):
    def __init__(self, words: str) -> None:
        super().__init__()
        self.words, self.heard = words, asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.heard.set()


async def test_a_slow_stop_names_the_components_still_running(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(FakeClock(), stop_report_s=0.02)
    slow, quick, stop = SlowToStop(), Waits("quick"), asyncio.Event()
    task = asyncio.create_task(supervisor.run_all([slow, quick], stop))
    await _until(supervisor, lambda: supervisor.components["slow"].up)
    heard = _Heard("still waiting for slow")
    logging.getLogger("ems.supervisor").addHandler(heard)
    try:
        with caplog.at_level(logging.WARNING, logger="ems.supervisor"):
            stop.set()
            await asyncio.wait_for(heard.heard.wait(), 2)
            slow.release.set()
            await asyncio.wait_for(task, 2)
    finally:
        logging.getLogger("ems.supervisor").removeHandler(heard)
    reports = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert reports and all(m.endswith("still waiting for slow") for m in reports)  # the quick one stopped at once
    assert supervisor.components["slow"].state is ComponentState.STOPPED
