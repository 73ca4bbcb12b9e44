"""Carrying out a dispatch round over ``ChargerControl``: cuts, then raises that fit, in waves.

The order comes from ``Dispatcher`` (pure); this only sends and waits. The first wave (the
cuts, those that lower what an EVSE may draw now the most first) goes out at once, through
a sliding window of ``max_in_flight`` sends: the next send starts when one is answered, or
when none was for ``release_s`` (a slow station never holds the others back). Hundreds of
sends started together would all be answered together, after the last was written; the
window lets the first cuts be in force while the last are still going out.

The next wave is planned when every cut was answered, or after ``wave_wait_s`` at the
latest: an unanswered cut keeps its EVSE counted at its old limit, so waiting longer would
only delay raises, never make them safer. Each wave is weighed against the limits in force
*then* (``limits`` may be a function): a capacity that fell during a round holds its
remaining raises back. A send still unanswered when its round ends stays in flight (and
counted at the higher of its limits) until its answer or its timeout; nothing is sent for a
transaction that ended meanwhile. ``close`` ends it all at shutdown: sends still out get
``grace_s`` to be answered, then are cancelled (their EVSEs counted at either limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ems.clock import Clock
from ems.controller.budget import EvsePlace, Limits
from ems.controller.dispatch import Desired, Dispatcher, EvseKey, Kind, Send
from ems.domain.commands import CommandResult, CommandStatus
from ems.ports.control import ChargerControl

log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    """Plain counters (read by /metrics) of profiles sent and what the stations answered."""

    sent: int = 0
    accepted: int = 0
    refused: int = 0
    timeouts: int = 0
    offline: int = 0
    skipped_ended: int = 0
    """TxProfiles not sent because their transaction ended before they went out."""
    held: int = 0
    """Raises that did not fit yet (the EVSE stayed at its lower limit until a later round)."""
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    sent: int
    """Accepted within the round."""
    refused: int
    """Answered with anything but ACCEPTED within the round."""
    held: int
    throttled: int = 0


Answer = Callable[[Send, CommandResult], None]
LimitsSource = Limits | Callable[[], Limits]
"""The limits a round is weighed against: fixed, or read afresh before every wave."""


class RoundRunner:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        control: ChargerControl,
        clock: Clock,
        still_running: Callable[[str], bool],
        on_answer: Answer | None = None,
        wave_wait_s: float = 5.0,
        max_waves: int = 3,
        max_in_flight: int = 64,
        release_s: float = 0.05,
    ) -> None:
        self.dispatcher = dispatcher
        self._control = control
        self._clock = clock
        self._still_running = still_running
        self._on_answer = on_answer
        self.wave_wait_s = wave_wait_s
        self.max_waves = max_waves
        self.max_in_flight = max(1, max_in_flight)
        self.release_s = release_s
        self.stats = DispatchStats()
        self._tasks: set[asyncio.Task[CommandResult | None]] = set()
        self._closed = False

    async def run(
        self, desired: list[Desired], limits: LimitsSource, places: Mapping[EvseKey, EvsePlace]
    ) -> RoundOutcome:
        if self._closed:
            return RoundOutcome(0, 0, 0)
        d = self.dispatcher
        now = self._clock.now()
        rnd = d.classify(desired, now, self._clock.monotonic())
        sent = refused = dropped = 0
        wave = d.first_wave(rnd)
        weighed = _read(limits)
        if rnd.pending:
            # Raises that fit even with every cut counted at its old limit may go out with the cuts.
            wave += d.next_wave(rnd, d.budget(weighed, places, now, rnd), places)
        for n in range(self.max_waves + 1):
            if wave:
                results = await self._wave(wave, _changed(limits, weighed))
                sent += sum(1 for r in results if r is not None and r.status is CommandStatus.ACCEPTED)
                refused += sum(
                    1 for r in results if r is not None and r is not _DROPPED and r.status is not CommandStatus.ACCEPTED
                )
                dropped += sum(1 for r in results if r is _DROPPED)
            elif n > 0:
                break
            if not rnd.pending:
                break
            weighed = _read(limits)
            budget = d.budget(weighed, places, self._clock.now(), rnd)
            wave = d.next_wave(rnd, budget, places)
        held = len(rnd.pending) + dropped
        self.stats.held += held
        if held:
            log.info(
                "controller: %d raise(s) held back until the cuts they need are in force: %s",
                held,
                ", ".join(f"{d.station_id}/{d.command.evse_id} {d.command.purpose}" for d in rnd.pending),
            )
        return RoundOutcome(sent, refused, held, rnd.throttled)

    async def cut(self, desired: list[Desired]) -> RoundOutcome:
        """Send profiles built nowhere above their EVSEs' bounds (``Dispatcher.cuts``) at once, in the order
        given (a capacity drop's proportional cuts): one wave, no weighing."""
        if self._closed:
            return RoundOutcome(0, 0, 0)
        results = await self._wave(self.dispatcher.cuts(desired, self._clock.now()))
        sent = sum(1 for r in results if r is not None and r.status is CommandStatus.ACCEPTED)
        refused = sum(1 for r in results if r is not None and r.status is not CommandStatus.ACCEPTED)
        return RoundOutcome(sent, refused, 0)

    async def _wave(self, wave: list[Send], stale: Callable[[], bool] = lambda: False) -> list[CommandResult | None]:
        """Send every profile of the wave, in its order, through the window; wait for the answers up to
        ``wave_wait_s`` from the wave's start. A raise not started yet when ``stale()`` (the limits it was
        weighed against changed) is dropped: never sent, it is weighed again by the next round."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wave_wait_s
        tasks: list[asyncio.Task[CommandResult | None]] = []
        window: set[asyncio.Task[CommandResult | None]] = set()
        answered = asyncio.Event()

        def leave(task: asyncio.Task[CommandResult | None]) -> None:
            window.discard(task)
            answered.set()

        results: dict[int, CommandResult | None] = {}
        for i, send in enumerate(wave):
            if self._closed:
                # Shutting down: what was not started is never sent (and so never installed).
                for left in wave[i:]:
                    self.dispatcher.answered(left, CommandStatus.REJECTED)
                break
            while len(window) >= self.max_in_flight:
                answered.clear()
                try:
                    async with asyncio.timeout(self.release_s):
                        await answered.wait()
                except TimeoutError:
                    window.clear()  # nothing answered for release_s: slow stations do not hold the rest back
            if send.kind is Kind.RAISE and stale():
                self.dispatcher.answered(send, CommandStatus.REJECTED)  # never sent, so never installed
                results[send.token] = _DROPPED
                continue
            self.dispatcher.mark_sent(send, self._clock.monotonic())
            task = asyncio.create_task(self._one(send), name=f"profile-{send.station_id}-{send.command.evse_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(leave)
            tasks.append(task)
            window.add(task)
        remaining = deadline - loop.time()
        pending = [t for t in tasks if not t.done()]
        if pending and remaining > 0:
            await asyncio.wait(pending, timeout=remaining)
        started = iter(tasks)
        handled = wave[: len(tasks) + len(results)]  # a shutdown may have left the rest out
        return [results[s.token] if s.token in results else _result(next(started)) for s in handled]

    async def _one(self, send: Send) -> CommandResult | None:
        if send.session_id is not None and not self._still_running(send.session_id):
            # The transaction ended while the round was planned: its profile would only be refused.
            self.dispatcher.answered(send, CommandStatus.REJECTED)  # never sent, so never installed
            self.stats.skipped_ended += 1
            return None
        self.stats.sent += 1
        try:
            result = await self._control.execute(send.station_id, send.command)
        except asyncio.CancelledError:
            self.dispatcher.answered(send, CommandStatus.TIMEOUT)  # it may have gone out: both stay possible
            raise
        except Exception as exc:
            # An adapter's own bug is reported as a failure, not a crash of the loop; the profile may
            # or may not have gone out, so the EVSE is counted at the higher of its limits.
            log.exception("controller: sending a profile to %s failed inside the adapter", send.station_id)
            result = CommandResult(CommandStatus.TIMEOUT, f"adapter error: {type(exc).__name__}")
        self.dispatcher.answered(send, result.status)
        self._count(send, result)
        if self._on_answer is not None:
            self._on_answer(send, result)
        return result

    def _count(self, send: Send, result: CommandResult) -> None:
        s = self.stats
        s.by_status[result.status.value] = s.by_status.get(result.status.value, 0) + 1
        if result.status is CommandStatus.ACCEPTED:
            s.accepted += 1
        elif result.status is CommandStatus.TIMEOUT:
            s.timeouts += 1
        elif result.status is CommandStatus.OFFLINE:
            s.offline += 1
        else:
            s.refused += 1
            log.warning(
                "controller: %s evse %d refused its %s (%s): %s %s",
                send.station_id,
                send.command.evse_id,
                send.command.purpose,
                send.kind.value if isinstance(send.kind, Kind) else send.kind,
                result.status.value,
                result.detail or "",
            )

    async def drain(self) -> None:
        """Wait for every send still in flight (tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def open(self) -> None:
        """Sending again after ``close`` (the controller started anew)."""
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Sends started and not answered yet."""
        return len(self._tasks)

    async def close(self, grace_s: float = 2.0) -> None:
        """Shutdown: nothing new goes out; sends still out get ``grace_s`` to be answered, then are cancelled
        (their EVSEs counted at the higher of their limits, as for a timeout). Idempotent."""
        self._closed = True
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=max(0.0, grace_s))
        for task in late:
            task.cancel()
        if late:
            log.info("controller: %d profile send(s) unanswered at shutdown, cancelled", len(late))
            await asyncio.gather(*late, return_exceptions=True)


_DROPPED = CommandResult(CommandStatus.REJECTED, "not sent: the limits it was weighed against changed")
"""The result of a raise dropped before it went out (the round counts it as held, not refused)."""


def _changed(limits: LimitsSource, weighed: Limits) -> Callable[[], bool]:
    """True once the limits in force are no longer those a wave was weighed against."""
    return lambda: _read(limits) is not weighed


def _read(limits: LimitsSource) -> Limits:
    return limits() if callable(limits) else limits


def _result(task: asyncio.Task[CommandResult | None]) -> CommandResult | None:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()
