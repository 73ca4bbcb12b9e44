"""Task helpers for Python 3.11's asyncio.

On 3.11 ``asyncio.wait_for`` swallows a cancellation that races the result it waits for
(fixed in 3.12, CPython gh-86296), and the ``ocpp`` library awaits every response that way.
A task cancelled at that moment keeps running, so ``task.cancel(); await task`` can hang
for good. ``cancel_and_wait`` cancels again until the task has really ended. In our own
code use ``async with asyncio.timeout(...)`` instead of ``wait_for`` in anything cancellable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RETRY_S = 0.1
"""How long to give a cancelled task before cancelling it again (a swallowed cancel costs this much)."""


GIVE_UP_S = 30.0
"""A task still running after 30 s of cancellations is a bug: say so rather than hang the caller."""


async def cancel_and_wait(task: asyncio.Future[Any], *, retry_s: float = RETRY_S, give_up_s: float = GIVE_UP_S) -> None:
    """Cancel ``task`` and wait until it has ended; re-raise what it failed with, other than cancellation.

    Raises ``TimeoutError`` if it is still running after ``give_up_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    while not task.done():
        if loop.time() >= deadline:
            name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
            raise TimeoutError(f"task {name} ignored cancellation for {give_up_s:.0f} s")
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        raise error


async def wait_any(tasks: Iterable[asyncio.Future[Any]], *events: asyncio.Event) -> None:
    """Wait until one of ``tasks`` is done or one of ``events`` is set.

    The event waiters are made here and cancelled before it returns, also when the caller is
    cancelled: a waiter on ``event.wait()`` left pending outlives its caller, and when
    its event is collected it is destroyed pending ("Task was destroyed but it is pending!" at
    exit, one per station of a long demo). ``tasks`` are the caller's and are left as they are."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait([*tasks, *waiters], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
