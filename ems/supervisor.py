"""Supervision: every long-running component runs under one ``asyncio.TaskGroup``, and stops together.

A component is anything with a ``name`` and ``run(stop)`` that returns when ``stop`` is set. A crash
in one sets ``stop`` and reaches the caller through the TaskGroup; one that returns on its own
(without ``stop``) is logged and shuts the process down too, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


async def run_components(components: list[Component], stop: asyncio.Event) -> None:
    """Run every component until ``stop`` is set or one of them fails."""
    async with asyncio.TaskGroup() as group:
        for component in components:
            group.create_task(_supervised(component, stop), name=component.name)


async def _supervised(component: Component, stop: asyncio.Event) -> None:
    try:
        await component.run(stop)
    except BaseException:
        stop.set()
        raise
    if not stop.is_set():
        log.warning("component %s stopped on its own; shutting down", component.name)
        stop.set()


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
    waiting = asyncio.create_task(ready.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    stopping.cancel()
    return ready.is_set()
