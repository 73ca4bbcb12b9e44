"""Issue 10: a whole ems process (build_system, real servers on port 0): /health shows readiness per
component and turns 503 when one fails; /metrics shows the failure, OCPP traffic and HTTP requests."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from ems.app import Runtime, System, build_system
from ems.bus import EventBus
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain.site import default_site
from ems.domain.station import Station
from ems.ocpp.journal import Record
from ems.security import hash_password
from ems.storage.factory import SqlStorage
from ems.supervisor import Backoff, run_components

WAIT_S = 10.0
PASSWORD = "station-secret-1"


@pytest.fixture
async def system(sqlite_storage: SqlStorage, tmp_path: Path) -> AsyncIterator[System]:
    settings = Settings(api_port=0, ocpp_port=0, data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    runtime = Runtime(
        settings=settings, sites=(default_site(),), clock=SystemClock(), bus=EventBus(), storage=sqlite_storage
    )
    await sqlite_storage.stations.add(Station(id="CP-HM", password_hash=hash_password(PASSWORD)))
    system = await build_system(runtime)
    system.supervisor.backoff = Backoff(first_s=30.0)  # a failed applier stays down for the test's length
    stop = asyncio.Event()
    task = asyncio.create_task(run_components(system.components(), stop, system.supervisor))
    try:
        await asyncio.wait_for(system.api.started.wait(), WAIT_S)
        await asyncio.wait_for(system.ocpp.started.wait(), WAIT_S)
        yield system
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.mark.slow  # ~12 s: shutdown waits out the OCPP drain timeout (the applier is broken on purpose)
async def test_health_and_metrics_show_a_failing_applier(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.api.url) as http:
        r = await http.get("/health")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok"
        assert {"component:api", "component:ocpp", "component:ocpp-applier", "component:controller", "ocpp"} <= set(
            body["checks"]
        )
        assert body["checks"]["ocpp"]["applier_alive"] is True and body["checks"]["ocpp"]["journal_lag"] == 0
        assert (await http.get("/health/live")).status_code == 200

        runtime = system.ocpp

        async def broken(records: list[Record]) -> None:
            raise OverflowError("date value out of range")

        async def quarantine_broken(records: list[Record], error: Exception) -> None:
            raise error  # a batch that fails is quarantined; here that fails too, so the applier fails

        runtime.applier.apply = broken  # type: ignore[method-assign]
        runtime.applier._quarantine_all = quarantine_broken  # type: ignore[method-assign]
        token = base64.b64encode(f"CP-HM:{PASSWORD}".encode()).decode()
        async with connect(
            f"{system.ocpp.url}/CP-HM",
            subprotocols=[websockets.Subprotocol("ocpp1.6")],
            additional_headers={"Authorization": f"Basic {token}"},
        ) as ws:
            await ws.send(json.dumps([2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
            assert json.loads(await ws.recv())[0] == 3, "the station is still answered"
            await ws.send(json.dumps([2, "2", "NoSuchAction", {}]))
            assert json.loads(await ws.recv())[0] == 4
            supervisor = system.supervisor
            async with asyncio.timeout(WAIT_S):
                while supervisor.components["ocpp-applier"].failures == 0:
                    supervisor.changed.clear()
                    await supervisor.changed.wait()

            r = await http.get("/health")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "degraded"
            applier = body["checks"]["component:ocpp-applier"]
            assert applier["ready"] is False and applier["state"] == "restarting"
            assert applier["last_error"] == "OverflowError"
            assert body["checks"]["ocpp"]["ready"] is False and body["checks"]["ocpp"]["journal_lag"] == 1
            assert body["checks"]["component:api"]["ready"] is True, "the rest runs on"

            r = await http.get("/metrics")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            m = _samples(r.text)
        assert m[("ems_component_up", (("component", "ocpp-applier"),))] == 0
        assert m[("ems_component_up", (("component", "api"),))] == 1
        assert m[("ems_component_failures_total", (("component", "ocpp-applier"),))] == 1
        assert m[("ems_ocpp_journal_lag", ())] == 1
        assert m[("ems_ocpp_messages_received_total", (("action", "BootNotification"), ("version", "ocpp1.6")))] == 1
        assert m[("ems_ocpp_call_errors_sent_total", (("code", "NotSupported"), ("version", "ocpp1.6")))] == 1
        assert m[("ems_ocpp_stations_connected", ())] == 1
        assert m[("ems_http_requests_total", (("method", "GET"), ("route", "/health"), ("status", "503")))] == 1
        assert m[("ems_http_requests_total", (("method", "GET"), ("route", "/health"), ("status", "200")))] == 1
        assert ("ems_controller_replans_total", ()) in m and ("ems_auth_failures_total", (("door", "api"),)) in m
        # the process itself: a leak shows as a climb of these over hours (benchmarks/soak.py)
        assert m[("ems_asyncio_tasks", ())] >= len(system.components())
        assert m[("ems_gc_objects_tracked", ())] > 1000
        assert m[("ems_python_allocated_blocks", ())] > m[("ems_gc_objects_tracked", ())]
        assert m[("process_resident_memory_bytes", ())] > 10 * 2**20
        assert m[("process_open_fds", ())] >= 3
