"""The composition root's supervision: a crash in one component stops the others and is seen."""

import asyncio

import pytest

from ems.supervisor import run_components


class Waits:
    name = "waits"

    def __init__(self) -> None:
        self.stopped_cleanly = False

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopped_cleanly = True


class Crashes:
    name = "crashes"

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")


class Returns:
    name = "returns"

    async def run(self, stop: asyncio.Event) -> None:
        return None


async def test_stop_event_ends_every_component() -> None:
    stop = asyncio.Event()
    a, b = Waits(), Waits()
    task = asyncio.create_task(run_components([a, b], stop))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert a.stopped_cleanly and b.stopped_cleanly


async def test_a_crash_stops_the_rest_and_propagates() -> None:
    stop = asyncio.Event()
    waiting = Waits()
    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(run_components([waiting, Crashes()], stop), 1)
    assert info.group_contains(RuntimeError, match="boom")
    assert stop.is_set() and waiting.stopped_cleanly


async def test_a_component_that_returns_early_shuts_the_process_down() -> None:
    stop = asyncio.Event()
    waiting = Waits()
    await asyncio.wait_for(run_components([waiting, Returns()], stop), 1)
    assert stop.is_set() and waiting.stopped_cleanly
