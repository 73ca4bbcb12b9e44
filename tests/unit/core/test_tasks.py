import asyncio

import pytest

from ems.tasks import cancel_and_wait


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
