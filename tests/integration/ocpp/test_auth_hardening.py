"""Issue 10: station authentication an operator can enforce, and throttled, over real WebSockets.

The clients here are plain ``websockets`` connections (not the simulator): what an attacker has.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ems.config import Settings
from ems.domain.station import Station
from ems.ocpp.runtime import ocpp_config
from ems.security import hash_password
from ems.storage.factory import SqlStorage
from ems.throttle import AuthThrottle, ThrottleSettings
from tests.integration.ocpp.conftest import OcppEnv, start_env, stop_env

PASSWORD = "station-secret-1"


def _basic(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _status(url: str, station_id: str, headers: dict[str, str] | None = None, **kw: object) -> int:
    """The HTTP status of the upgrade: 101 if the WebSocket opened, else the refusal's."""
    try:
        async with connect(
            f"{url}/{station_id}", subprotocols=[websockets.Subprotocol("ocpp1.6")], additional_headers=headers, **kw
        ):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def _running(storage: SqlStorage, tmp_path: Path, settings: Settings) -> AsyncIterator[OcppEnv]:
    config = ocpp_config(settings)
    env, stop, task = await start_env(storage, tmp_path / "journal.db", config, cards=False)
    await storage.stations.add(Station(id="CP-NOPW"))
    await storage.stations.add(Station(id="CP-PW", password_hash=hash_password(PASSWORD)))
    await storage.stations.add(Station(id="CP-OTHER", password_hash=hash_password(PASSWORD)))
    try:
        yield env
    finally:
        await stop_env(env, stop, task)


@pytest.fixture
async def required(storage: SqlStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OcppEnv]:
    monkeypatch.setenv("EMS_OCPP_REQUIRE_PASSWORD", "true")
    settings = Settings(ocpp_port=0, _env_file=None)  # type: ignore[call-arg]
    async for env in _running(storage, tmp_path, settings):
        yield env


def test_passwords_are_required_by_default() -> None:
    assert Settings(_env_file=None).ocpp_require_password is True  # type: ignore[call-arg]
    assert ocpp_config(Settings(_env_file=None)).require_password is True  # type: ignore[call-arg]


async def test_required_password_refuses_a_station_without_credentials(required: OcppEnv) -> None:
    assert required.runtime.server.config.require_password, "EMS_OCPP_REQUIRE_PASSWORD reaches the server"
    # Registered without a password: before, anyone knowing its id got in.
    assert await _status(required.url, "CP-NOPW") == 401
    assert await _status(required.url, "CP-NOPW", _basic("CP-NOPW", "anything-at-all")) == 401
    assert await _status(required.url, "CP-PW") == 401
    assert await _status(required.url, "CP-PW", _basic("CP-PW", PASSWORD)) == 101


async def test_relaxed_setting_lets_a_station_without_password_in(
    storage: SqlStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMS_OCPP_REQUIRE_PASSWORD", "false")
    async for env in _running(storage, tmp_path, Settings(ocpp_port=0, _env_file=None)):  # type: ignore[call-arg]
        assert await _status(env.url, "CP-NOPW") == 101
        assert await _status(env.url, "CP-PW") == 401, "a station with a password always needs it"


async def test_wrong_passwords_are_throttled_per_source_and_per_station(
    required: OcppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ems.security")
    # A first lockout of a minute, not 1 s: the 200 attempts must fit in it on a loaded CI machine.
    required.runtime.server.throttle = AuthThrottle(ThrottleSettings(base_lockout_s=60.0))
    statuses = [await _status(required.url, "CP-PW", _basic("CP-PW", f"wrong-{i:04d}")) for i in range(200)]
    assert statuses[:6] == [401] * 6
    assert set(statuses[6:]) == {429}, "refused before the password is checked"
    checked = required.runtime.server.throttle.failures
    assert checked <= 10, f"{checked} of 200 wrong passwords were checked"
    # The right password from the locked-out source waits too; the refusal says for how long.
    try:
        async with connect(f"{required.url}/CP-PW", subprotocols=[websockets.Subprotocol("ocpp1.6")]):
            raise AssertionError("admitted while locked out")
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 429
        assert int(refused.response.headers["Retry-After"]) >= 1
    # Another address is locked out for this station id (per identity) but not for another station.
    other = {"local_addr": ("127.0.0.2", 0)}
    assert await _status(required.url, "CP-PW", _basic("CP-PW", PASSWORD), **other) == 429
    assert await _status(required.url, "CP-OTHER", _basic("CP-OTHER", PASSWORD), **other) == 101
    events = {getattr(r, "security_event", None) for r in caplog.records if r.name == "ems.security"}
    assert {"ocpp_auth_failed", "ocpp_auth_throttled"} <= events
    assert not any("wrong-0" in r.getMessage() for r in caplog.records), "a guessed password is never logged"
