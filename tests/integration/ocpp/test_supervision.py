"""Issue 10: the journal applier is supervised. A failure is logged with its traceback, shown,
and the applier restarts and applies the interrupted batch again: nothing answered is lost.
Frames come from a raw WebSocket client."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ems.bus import EventBus
from ems.clock import SystemClock
from ems.domain.station import Station
from ems.ocpp.journal import Record
from ems.ocpp.runtime import OcppRuntime
from ems.ocpp.server import OcppServerConfig
from ems.storage.factory import SqlStorage
from ems.supervisor import Backoff, ComponentState, Supervisor
from tests.integration.ocpp.conftest import WAIT_S


async def _call(ws: websockets.ClientConnection, unique_id: str, action: str, payload: dict[str, object]) -> object:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    answer = json.loads(await ws.recv())
    assert answer[0] == 3 and answer[1] == unique_id, answer
    return answer[2]


async def test_a_failing_applier_is_restarted_and_loses_nothing(
    storage: SqlStorage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await storage.stations.add(Station(id="CP-SUP"))
    supervisor = Supervisor(SystemClock(), Backoff(first_s=0.05))
    runtime = await OcppRuntime.open(
        OcppServerConfig(port=0),
        storage,
        EventBus(),
        SystemClock(),
        journal_path=tmp_path / "journal.db",
        supervisor=supervisor,
    )
    real_apply = runtime.applier.apply
    failures = 0

    async def apply_failing_once(records: list[Record]) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise OverflowError("date value out of range")  # what issue 10's frame did, once
        await real_apply(records)

    async def quarantine_failing(records: list[Record], error: Exception) -> None:
        raise error  # the quarantine cannot be written either (say, storage went down meanwhile)

    runtime.applier.apply = apply_failing_once  # type: ignore[method-assign]
    # A failing batch is normally quarantined (docs/ocpp-input.md); when that fails too, the applier
    # fails, the supervisor restarts it, and the batch it holds is applied again.
    runtime.applier._quarantine_all = quarantine_failing  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await asyncio.wait_for(runtime.server.started.wait(), WAIT_S)
        async with connect(f"{runtime.server.url}/CP-SUP", subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
            await _call(ws, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
            await _call(ws, "2", "StatusNotification", {**status, "timestamp": "2026-01-05T08:00:00Z"})
            async with asyncio.timeout(WAIT_S):
                while supervisor.components["ocpp-applier"].state is not ComponentState.RUNNING or not failures:
                    supervisor.changed.clear()
                    await supervisor.changed.wait()
            await asyncio.wait_for(runtime.drained(), WAIT_S)
        health = supervisor.components["ocpp-applier"]
        assert health.failures == 1 and health.last_error == "OverflowError"
        assert health.state is ComponentState.RUNNING
        station = await storage.stations.get("CP-SUP")
        assert station is not None and station.vendor == "V", "the interrupted batch was applied after the restart"
        history = await storage.stations.status_history("CP-SUP")
        assert [h.status.value for h in history] == ["Charging"]
        assert any(
            r.exc_info and "ocpp-applier failed" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
