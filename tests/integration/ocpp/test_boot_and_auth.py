"""Handshake and boot: versions, unknown stations, passwords, subprotocols, takeover."""

from __future__ import annotations

from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from ems.domain.card import AuthorizationStatus, Card, CardStatus
from ems.domain.events import StationBooted, StationConnected, StatusChanged
from ems.domain.station import OcppVersion
from ems.ocpp.server import OcppServerConfig
from ems.storage.factory import SqlStorage
from tests.integration.ocpp.conftest import OcppEnv, start_env, stop_env


async def test_boot_registers_vendor_and_online(env: OcppEnv, version: OcppVersion) -> None:
    sim = await env.booted("CP-1", version)
    assert sim.stats.boot_status == "Accepted"
    await env.wait_for(StationConnected, lambda e: e.station_id == "CP-1")
    booted = await env.wait_for(StationBooted, lambda e: e.station_id == "CP-1")
    assert booted.vendor == "ems-sim"
    await env.wait_for(StatusChanged, lambda e: e.station_id == "CP-1" and e.evse_id == 2)
    station = await env.storage.stations.get("CP-1")
    assert station is not None and station.online and station.model == "SimCharger" and station.ocpp_version is version
    assert len(await env.storage.stations.status_history("CP-1")) == 2


async def test_authorize_against_cards(env: OcppEnv, version: OcppVersion) -> None:
    await env.storage.cards.add(Card(uid="BLOCKED", status=CardStatus.BLOCKED))
    sim = await env.booted("CP-A", version)
    assert await sim.authorize("GOOD-CARD") is AuthorizationStatus.ACCEPTED
    assert await sim.authorize("BLOCKED") is AuthorizationStatus.BLOCKED
    assert await sim.authorize("NOBODY") is AuthorizationStatus.INVALID


async def test_unknown_station_is_refused(env: OcppEnv, version: OcppVersion) -> None:
    sim = await env.station("STRANGER", version, register=False)
    with pytest.raises(InvalidStatus) as refused:
        await sim.connect()
    assert refused.value.response.status_code == 404
    assert await env.storage.stations.get("STRANGER") is None


async def test_auto_register(storage: SqlStorage, tmp_path: Path, version: OcppVersion) -> None:
    env, stop, task = await start_env(storage, tmp_path / "j.db", OcppServerConfig(port=0, auto_register=True))
    try:
        await env.booted("NEWCOMER", version, register=False)
        station = await storage.stations.get("NEWCOMER")
        assert station is not None and station.ocpp_version is version and station.registered_at is not None
    finally:
        await stop_env(env, stop, task)


async def test_basic_auth(env: OcppEnv, version: OcppVersion) -> None:
    good = await env.booted("CP-PW", version, password="s3cret-pass")
    await good.close()
    for password in ("wrong-pass!", None):
        bad = await env.station("CP-PW", version, password=password, register=False)
        with pytest.raises(InvalidStatus) as refused:
            await bad.connect()
        assert refused.value.response.status_code == 401


async def test_refused_subprotocol(env: OcppEnv) -> None:
    await env.station("CP-SUB", OcppVersion.V16)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{env.url}/CP-SUB", subprotocols=[websockets.Subprotocol("ocpp1.5")])
    assert refused.value.response.status_code == 400
    with pytest.raises(InvalidStatus):
        await websockets.connect(f"{env.url}/CP-SUB")


async def test_second_connection_refused_while_first_alive(env: OcppEnv, version: OcppVersion) -> None:
    await env.booted("CP-TWIN", version)
    twin = await env.station("CP-TWIN", version, register=False)
    with pytest.raises(InvalidStatus) as refused:
        await twin.connect()
    assert refused.value.response.status_code == 409
    assert env.runtime.control.is_online("CP-TWIN")
