"""The ``ems`` command as a user runs it: real processes, real storage, real ports."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

ADMIN_KEY = "cli-test-admin-key-0123456789"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMS_")}
    env.update({"EMS_DATA_DIR": str(tmp_path / "data"), "EMS_ADMIN_API_KEY": ADMIN_KEY}, **extra)
    return env


def ems(args: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ems", *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_version(tmp_path: Path) -> None:
    r = ems(["version"], env_for(tmp_path), tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("ems ")


def test_admin_commands_write_to_the_embedded_database(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    r = ems(["db", "upgrade"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "ems.db").exists()
    r = ems(["station", "add", "CP7", "--password", "station-secret"], env, tmp_path)
    assert r.returncode == 0 and "with a password" in r.stdout, r.stderr
    r = ems(["station", "add", "CP7"], env, tmp_path)
    assert r.returncode == 1 and "CP7" in r.stderr and "Traceback" not in r.stderr
    r = ems(["station", "add", "CP8", "--password", "x"], env, tmp_path)
    assert r.returncode == 2 and "password must be" in r.stderr
    r = ems(["card", "add", "04AABB", "--expires", "2027-01-01T00:00+00:00"], env, tmp_path)
    assert r.returncode == 0 and "04AABB" in r.stdout, r.stderr
    r = ems(["apikey", "create", "--name", "ops", "--role", "operator"], env, tmp_path)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("ems_"), r.stderr
    r = ems(["apikey", "create", "--name", "temp", "--role", "analyst", "--expires-in-days", "30"], env, tmp_path)
    assert r.returncode == 0 and "expires 20" in r.stdout, r.stderr
    r = ems(["apikey", "create", "--name", "bad", "--expires-in-days", "0"], env, tmp_path)
    assert r.returncode == 2 and "--expires-in-days" in r.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = env_for(tmp_path, EMS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    r = ems(["db", "upgrade"], env, tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "127.0.0.1:1" in r.stderr


def test_malformed_settings_are_named(tmp_path: Path) -> None:
    r = ems(["db", "upgrade"], env_for(tmp_path, EMS_DATABASE_URL="mysql://x/y"), tmp_path)
    assert r.returncode == 2 and "EMS_DATABASE_URL" in r.stderr and "Traceback" not in r.stderr
    r = ems(["db", "upgrade"], env_for(tmp_path, EMS_ADMIN_API_KEY="changeme"), tmp_path)
    assert r.returncode == 2 and "EMS_ADMIN_API_KEY" in r.stderr


def test_bad_site_file_lists_every_problem(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[[sites]]\nid = "s"\ncapacity_w = -5\ntimezone = "Nowhere/City"\n')
    r = ems(["serve", "--site", str(site), "--api-port", "0", "--ocpp-port", "0"], env_for(tmp_path), tmp_path)
    assert r.returncode == 2, r.stderr
    assert "capacity_w must not be negative" in r.stderr and "unknown timezone" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
async def test_serve_answers_health_and_guards_the_api(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ems",
        "serve",
        "--api-port",
        "0",
        "--ocpp-port",
        "0",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "ems serve exited before announcing the API"
            if m := re.search(r"API on (http://\S+)", line):
                url = m.group(1)
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/health")
            assert r.status_code == 200 and r.json()["database"]["backend"] == "sqlite"
            assert (await client.get("/api/v1/stations")).status_code == 401
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            r = await client.post("/api/v1/cards", json={"uid": "CARD1"}, headers=headers)
            assert r.status_code == 201
            assert (await client.get("/api/v1/cards/CARD1", headers=headers)).status_code == 200
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


@pytest.mark.slow
def test_demo_runs_for_its_duration_and_summarizes(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    del env["EMS_ADMIN_API_KEY"]
    r = ems(["demo", "--duration", "4", "--api-port", "0", "--ocpp-port", "0"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "admin API key for this run" in r.stdout
    assert "ems demo: demo ran" in r.stdout and "sessions:" in r.stdout
    assert "ems demo: billing:" in r.stdout and "ems demo: balances: SIM-CARD-1" in r.stdout
    assert "ems demo: driver page http://" in r.stdout and "PIN" in r.stdout
    assert (tmp_path / "ems-data" / "demo" / "stickers.pdf").read_bytes().startswith(b"%PDF")
    assert "EMS_WEB_SECRET" not in r.stderr, "the demo signs its forms with a key of its own run"
    assert "fontTools" not in r.stderr
    assert (tmp_path / "ems-data" / "demo" / "demo.db").exists()
    assert (tmp_path / "ems-data" / "demo" / "ocpp-journal.db").exists()
    assert not (tmp_path / "ems-data" / "ocpp-journal.db").exists(), "the demo keeps out of serve's data"


@pytest.mark.slow
def test_demo_scales_to_more_stations_and_refuses_nonsense(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    for bad in ("0", "501"):
        r = ems(["demo", "--stations", bad, "--duration", "4"], env, tmp_path)
        assert r.returncode == 2 and "--stations must be from 1 to 500 (stations of each OCPP version)" in r.stderr
    r = ems(["demo", "--stations", "6", "--duration", "6", "--api-port", "0", "--ocpp-port", "0"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ems demo: stations: 12 registered, 12 connected during the run" in r.stdout


@pytest.mark.slow
async def test_serve_requires_station_passwords_and_logs_json(tmp_path: Path) -> None:
    """`ems serve` defaults: a station registered without a password is refused; EMS_LOG_FORMAT=json."""
    env = env_for(tmp_path, EMS_LOG_FORMAT="json")
    assert ems(["station", "add", "CP-NOPW"], env, tmp_path).returncode == 0
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "ems", "serve", "--api-port", "0", "--ocpp-port", "0"],
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        api = ocpp = None
        while api is None or ocpp is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "ems serve exited before announcing its servers"
            api = api or ((m := re.search(r"API on (http://\S+)", line)) and m.group(1))
            ocpp = ocpp or ((m := re.search(r"OCPP on (ws://\S+)/<station-id>", line)) and m.group(1))
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(f"{ocpp}/CP-NOPW", subprotocols=[websockets.Subprotocol("ocpp1.6")]):
                pass
        assert refused.value.response.status_code == 401
        async with httpx.AsyncClient(base_url=api) as client:
            assert (await client.get("/metrics")).status_code == 200
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
    assert proc.stderr is not None
    lines = [json.loads(line) for line in (await proc.stderr.read()).decode().splitlines() if line.strip()]
    assert any(line.get("security_event") == "ocpp_auth_failed" for line in lines), lines
    assert not any("connection open" in line["message"] for line in lines)
