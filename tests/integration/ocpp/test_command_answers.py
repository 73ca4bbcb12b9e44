"""Answers to commands are checked against their schema (compiled, not the library's thread-pool jsonschema):
a raw 1.6 station answers SetChargingProfile with an invalid, then a valid answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ems.domain import commands as cmd
from ems.domain.commands import CommandResult, CommandStatus
from tests.integration.ocpp.conftest import WAIT_S, OcppEnv
from tests.integration.ocpp.test_hostile_frames import Raw, raw

LIMIT = cmd.SetChargingLimit(
    evse_id=1,
    profile_id=5,
    purpose="TxDefaultProfile",
    rate_unit="A",
    periods=(cmd.ChargingSchedulePeriod(start_offset_s=0, limit=6.0, number_phases=3),),
)


async def answered(env: OcppEnv, cp: Raw, answer: dict[str, Any]) -> CommandResult:
    """Send LIMIT to the station; the station answers ``answer``."""
    task = asyncio.create_task(env.runtime.control.execute("CP-ANS", LIMIT))
    async with asyncio.timeout(WAIT_S):
        frame = json.loads(await cp.ws.recv())
        assert frame[0] == 2 and frame[2] == "SetChargingProfile", frame
        assert frame[3]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0
        await cp.ws.send(json.dumps([3, frame[1], answer]))
        return await task


async def test_an_answer_that_fails_its_schema_is_rejected_and_a_valid_one_accepted(env: OcppEnv) -> None:
    async with raw(env, "CP-ANS", "ocpp1.6") as cp:
        await cp.result("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"})
        bad = await answered(env, cp, {"status": "Maybe"})
        assert bad.status is CommandStatus.REJECTED and "FormatViolation" in (bad.detail or ""), bad
        extra = await answered(env, cp, {"status": "Accepted", "surprise": 1})
        assert extra.status is CommandStatus.REJECTED, extra
        good = await answered(env, cp, {"status": "Accepted"})
        assert good.status is CommandStatus.ACCEPTED, good
