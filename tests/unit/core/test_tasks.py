import asyncio

import pytest

from ems.tasks import cancel_and_wait, wait_any


async def test_a_task_that_swallows_one_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed == 0:
                    swallowed += 1  # what a racing wait_for does on 3.11
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, retry_s=0.01), 2)
    assert task.cancelled() and swallowed == 1


async def test_a_failure_of_the_task_is_not_hidden() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)


async def test_a_task_that_never_stops_is_reported_not_waited_for_forever() -> None:
    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError, match="immortal"):
        await cancel_and_wait(task, retry_s=0.01, give_up_s=0.1)
    task.get_coro().close()  # type: ignore[union-attr]


def _others() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_wait_any_returns_on_a_task_or_an_event_and_leaves_no_waiter() -> None:
    event, other = asyncio.Event(), asyncio.Event()
    done = asyncio.ensure_future(asyncio.sleep(0))
    await wait_any([done], event, other)
    assert done.done()
    await asyncio.sleep(0)
    assert _others() == set(), "the event waiters were cancelled"
    asyncio.get_running_loop().call_soon(other.set)
    await asyncio.wait_for(wait_any([], event, other), 1)
    await asyncio.sleep(0)
    assert _others() == set()


async def test_wait_any_cancelled_leaves_no_waiter_but_keeps_the_callers_tasks() -> None:
    """The shape of the soak's finding: a station's loop cancelled while it waits for its reader
    or its queue; the queue waiter must not outlive it (it was destroyed pending at exit)."""
    event = asyncio.Event()
    reader = asyncio.ensure_future(asyncio.sleep(10))
    waiting = asyncio.create_task(wait_any([reader], event))
    await asyncio.sleep(0.01)
    assert len(_others()) == 3  # reader, the caller, its event waiter
    await cancel_and_wait(waiting)
    await asyncio.sleep(0)
    assert _others() == {reader}, "only the caller's own task is left, running"
    await cancel_and_wait(reader)
