"""Commands through ChargerControl against simulated stations of both versions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ems.domain import commands as cmd
from ems.domain.commands import CommandStatus
from ems.domain.events import SessionEnded, SessionStarted, StationConnected
from ems.domain.station import OcppVersion
from ems.errors import InvalidInput
from ems.sim.behaviour import run_station
from ems.sim.station import SimStation
from ems.tasks import cancel_and_wait
from tests.integration.ocpp.conftest import WAIT_S, OcppEnv

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
async def running(env: OcppEnv, version: OcppVersion) -> AsyncIterator[SimStation]:
    """A station running on its own (connection loop, intents), connected."""
    sim = await env.station("CP-CMD", version)
    task = asyncio.create_task(run_station(sim))
    await asyncio.wait_for(sim.connected.wait(), WAIT_S)
    await env.wait_for(StationConnected, lambda e: e.station_id == "CP-CMD")  # published once the link is registered
    try:
        yield sim
    finally:
        await cancel_and_wait(task)


async def test_remote_start_and_stop(env: OcppEnv, running: SimStation) -> None:
    control = env.runtime.control
    result = await control.execute("CP-CMD", cmd.RemoteStart(id_tag="GOOD-CARD", evse_id=2, remote_start_id=7))
    assert result.status is CommandStatus.ACCEPTED, result
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-CMD")
    assert started.evse_id == 2 and started.id_tag == "GOOD-CARD"
    await env.drained()
    session = await env.storage.sessions.get(started.session_id)
    assert session is not None
    result = await control.execute("CP-CMD", cmd.RemoteStop(transaction_id=session.transaction_id))
    assert result.ok
    ended = await env.wait_for(SessionEnded, lambda e: e.session_id == started.session_id)
    assert ended.reason == "Remote"
    unknown = await control.execute("CP-CMD", cmd.RemoteStop(transaction_id="999999"))
    assert unknown.status is CommandStatus.REJECTED


async def test_charging_profile_is_obeyed(env: OcppEnv, running: SimStation) -> None:
    control = env.runtime.control
    limit = cmd.SetChargingLimit(
        evse_id=1,
        profile_id=11,
        purpose="ChargePointMaxProfile",
        rate_unit="A",
        periods=(cmd.ChargingSchedulePeriod(start_offset_s=0, limit=10, number_phases=3),),
    )
    assert (await control.execute("CP-CMD", limit)).ok
    assert running.limit_w(1) == pytest.approx(6_900)
    composite = await control.execute("CP-CMD", cmd.GetCompositeSchedule(evse_id=1, duration_s=600))
    assert composite.ok and composite.data
    cleared = await control.execute("CP-CMD", cmd.ClearChargingLimit(profile_id=11))
    assert cleared.ok and running.limit_w(1) is None


async def test_version_specific_and_unsupported_commands(
    env: OcppEnv, running: SimStation, version: OcppVersion
) -> None:
    control = env.runtime.control
    config = await control.execute("CP-CMD", cmd.GetConfiguration(keys=("HeartbeatInterval",)))
    variables = await control.execute(
        "CP-CMD",
        cmd.GetVariables(variables=(cmd.VariableRef(component="OCPPCommCtrlr", variable="HeartbeatInterval"),)),
    )
    if version is OcppVersion.V16:
        assert config.ok and config.data["configuration_key"][0]["value"] == "300"
        assert variables.status is CommandStatus.NOT_SUPPORTED
    else:
        assert config.status is CommandStatus.NOT_SUPPORTED
        assert variables.ok
    # the simulator has no handler for reservations: the station's CALLERROR NotImplemented
    reserve = await control.execute("CP-CMD", cmd.ReserveNow(reservation_id=1, id_tag="GOOD-CARD", expires_at=T0))
    assert reserve.status is CommandStatus.NOT_SUPPORTED
    assert (await control.execute("CP-CMD", cmd.Reset())).ok
    assert (await control.execute("CP-CMD", cmd.UnlockConnector(evse_id=1))).ok


async def test_offline_station(env: OcppEnv) -> None:
    result = await env.runtime.control.execute("NOT-THERE", cmd.Reset())
    assert result.status is CommandStatus.OFFLINE
    assert not env.runtime.control.is_online("NOT-THERE")


async def test_invalid_command_is_refused_before_sending(
    env: OcppEnv, running: SimStation, version: OcppVersion
) -> None:
    with pytest.raises(InvalidInput):
        await env.runtime.control.execute("CP-CMD", cmd.TriggerMessage(message="NoSuchMessage"))
    if version is OcppVersion.V16:
        with pytest.raises(InvalidInput):
            await env.runtime.control.execute("CP-CMD", cmd.RemoteStop(transaction_id="not-a-number"))
