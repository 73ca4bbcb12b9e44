"""A real ems (``ems demo``: API, OCPP server, controller, simulated 1.6 and 2.0.1 stations on a
sped-up clock) in a subprocess running this worktree's code, an operator account made with
``ems operator create``, and headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
CHROMIUM = os.environ.get("EMS_CHROMIUM", "/usr/bin/chromium")
EMAIL, PASSWORD = "ops@example.org", "console e2e password"
SCREENSHOTS = os.environ.get("EMS_CONSOLE_SCREENSHOTS")
"""A directory (e.g. ``docs``) to keep the screenshots in; unset: the test's temporary directory."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningEms:
    url: str
    admin_key: str
    data_dir: Path


@pytest.fixture(scope="module")
def ems_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEms]:
    work = tmp_path_factory.mktemp("ems-demo")
    api_port, ocpp_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMS_ADMIN_API_KEY": "e2e-console-admin-key-0123456789",
        "EMS_LOG_LEVEL": "WARNING",
    }
    env.pop("EMS_MQTT_URL", None)
    env.pop("EMS_DATABASE_URL", None)
    log = (work / "ems.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ems", "demo", "--api-port", str(api_port), "--ocpp-port", str(ocpp_port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 60
        while "API on" not in (work / "ems.log").read_text():
            assert proc.poll() is None, (work / "ems.log").read_text()
            assert time.monotonic() < deadline, "ems demo did not start in 60 s"
            time.sleep(0.2)
        while "console sign-in: demo@ems.example / " not in (work / "ems.log").read_text():
            assert time.monotonic() < deadline, "ems demo printed no console account"
            time.sleep(0.2)
        db = work / "ems-data" / "demo" / "demo.db"
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "ems",
                "operator",
                "create",
                "--email",
                EMAIL,
                "--role",
                "admin",
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            cwd=work,
            env={**env, "EMS_DATABASE_URL": f"sqlite:///{db}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        time.sleep(8)  # eight simulated minutes: stations boot, report status, cars arrive, a plan is made
        yield RunningEms(url, env["EMS_ADMIN_API_KEY"], work)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # and reap it, or its Popen warns at teardown
            proc.wait(timeout=20)
        log.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out
