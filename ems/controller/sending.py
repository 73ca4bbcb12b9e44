"""Carrying out a dispatch round over ``ChargerControl``: cuts, then raises that fit, in waves.

The order comes from ``Dispatcher`` (pure); this only sends and waits. The first wave (the
cuts) goes out at once. The next wave is planned when every cut was answered, or after
``wave_wait_s`` at the latest: an unanswered cut keeps its EVSE counted at its old limit,
so waiting longer would only delay raises, never make them safer. A send still unanswered
when its round ends stays in flight (and counted at the higher of its limits) until its
answer or its timeout; nothing is sent for a transaction that ended meanwhile.
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
    ) -> None:
        self.dispatcher = dispatcher
        self._control = control
        self._clock = clock
        self._still_running = still_running
        self._on_answer = on_answer
        self.wave_wait_s = wave_wait_s
        self.max_waves = max_waves
        self.stats = DispatchStats()
        self._tasks: set[asyncio.Task[CommandResult | None]] = set()

    async def run(self, desired: list[Desired], limits: Limits, places: Mapping[EvseKey, EvsePlace]) -> RoundOutcome:
        d = self.dispatcher
        now = self._clock.now()
        rnd = d.classify(desired, now, self._clock.monotonic())
        sent = refused = 0
        wave = d.first_wave(rnd)
        if rnd.pending:
            # Raises that fit even with every cut counted at its old limit may go out with the cuts.
            wave += d.next_wave(rnd, d.budget(limits, places, now, rnd), places)
        for n in range(self.max_waves + 1):
            if wave:
                results = await self._wave(wave)
                sent += sum(1 for r in results if r is not None and r.status is CommandStatus.ACCEPTED)
                refused += sum(1 for r in results if r is not None and r.status is not CommandStatus.ACCEPTED)
            elif n > 0:
                break
            if not rnd.pending:
                break
            budget = d.budget(limits, places, self._clock.now(), rnd)
            wave = d.next_wave(rnd, budget, places)
        held = len(rnd.pending)
        self.stats.held += held
        if held:
            log.info(
                "controller: %d raise(s) held back until the cuts they need are in force: %s",
                held,
                ", ".join(f"{d.station_id}/{d.command.evse_id} {d.command.purpose}" for d in rnd.pending),
            )
        return RoundOutcome(sent, refused, held, rnd.throttled)

    async def _wave(self, wave: list[Send]) -> list[CommandResult | None]:
        """Send every profile of the wave; wait for their answers up to ``wave_wait_s``."""
        now_s = self._clock.monotonic()
        tasks = []
        for send in wave:
            self.dispatcher.mark_sent(send, now_s)
            task = asyncio.create_task(self._one(send), name=f"profile-{send.station_id}-{send.command.evse_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            tasks.append(task)
        done, _ = await asyncio.wait(tasks, timeout=self.wave_wait_s)
        return [t.result() if t in done else None for t in tasks]

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
        """Wait for every send still in flight (shutdown and tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
