"""The issue's done-criterion through the composition root: ``ems serve`` wiring with EMS_MQTT_URL set,
a forecast sent with the real ``mosquitto_pub``, acknowledged on the ack topic, visible at
``GET /api/v1/sites/{site}/capacity`` over HTTP, and site status on the status topic."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from ems.app import build_system, open_runtime
from ems.config import Settings
from ems.supervisor import run_components
from tests.integration.grid.conftest import WAIT_S, forecast, listening

pytestmark = pytest.mark.mqtt
ADMIN_KEY = "grid-serve-admin-key-0123456789"


async def test_mosquitto_pub_forecast_through_ems_serve(tmp_path: Path) -> None:
    site_id = f"serve-{uuid.uuid4().hex[:10]}"
    site_file = tmp_path / "site.toml"
    site_file.write_text(
        f'[[sites]]\nid = "{site_id}"\ncapacity_w = 150000\nfailsafe_capacity_w = 40000\nstale_after_s = 900\n'
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        api_port=0,
        ocpp_port=0,
        admin_api_key=ADMIN_KEY,
        site_file=site_file,
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_client_id=f"ems-test-{site_id}",
    )
    body = forecast(60, "dso-1")
    async with open_runtime(settings) as runtime, listening(site_id) as op:
        system = await build_system(runtime)
        assert system.mqtt is not None
        stop = asyncio.Event()
        task = asyncio.create_task(run_components(system.components(), stop))
        try:
            await asyncio.wait_for(system.mqtt.connected.wait(), WAIT_S)
            await asyncio.wait_for(system.api.started.wait(), WAIT_S)
            mosquitto_pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
            topic = f"ems/v1/sites/{site_id}/capacity/forecast"
            proc = await asyncio.create_subprocess_exec(
                mosquitto_pub, "-h", "127.0.0.1", "-q", "1", "-t", topic, "-m", json.dumps(body)
            )
            assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
            ack = await op.expect(f"ems/v1/sites/{site_id}/capacity/ack")
            assert ack["message_id"] == "dso-1" and ack["in_force"]["capacity_w"] == 60_000
            async with httpx.AsyncClient(base_url=system.api.url) as http:
                response = await http.get(
                    f"/api/v1/sites/{site_id}/capacity", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
                )
            assert response.status_code == 200, response.text
            got = response.json()
            assert got["in_force"]["capacity_w"] == 60_000 and got["forecast"]["message_id"] == "dso-1"
            status = await op.expect(f"ems/v1/sites/{site_id}/status")
            while status["limit"]["capacity_w"] != 60_000:
                status = await op.expect(f"ems/v1/sites/{site_id}/status")
            assert status["stale"] is False and status["active_sessions"] == 0
            await asyncio.wait_for(system.capacity.flush(), WAIT_S)
            stored = await runtime.storage.signals.for_site(site_id)
            assert [(s.message_id, ok) for s, ok, _ in stored] == [("dso-1", True)]
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
