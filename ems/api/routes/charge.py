"""Pay-before-start (QR code / app): hold committed in the ledger, then RemoteStart; stop; follow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import AnyUser, Principal
from ems.api.billing_support import BillingDep, account_for, check_owner, money
from ems.api.problems import PROBLEM_JSON
from ems.domain.commands import CommandStatus
from ems.errors import InvalidInput, NotFound
from ems.services.charge import ChargeStart, ChargeState

router = APIRouter(prefix="/api/v1/charge", tags=["charge"])

ChargeId = Annotated[str, Path(min_length=1, max_length=64)]

_FAILURE_STATUS = {
    CommandStatus.REJECTED: 409,
    CommandStatus.NOT_SUPPORTED: 409,
    CommandStatus.OFFLINE: 503,
    CommandStatus.TIMEOUT: 504,
}


class ChargeStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_id: str = Field(min_length=1, max_length=48)
    evse_id: int | None = Field(default=None, ge=1, description="EVSE (OCPP 2.0.1) or connector (1.6)")
    account_id: str | None = Field(default=None, description="The paying account; or give card_uid")
    card_uid: str | None = Field(default=None, description="A prepaid card whose account pays")


class ChargePublic(BaseModel):
    charge_id: str
    """Follow it at ``GET /api/v1/charge/{charge_id}``; stop it with ``POST .../stop``."""
    state: str
    """``pending`` (held, waiting for the session), ``charging``, ``completed`` or ``cancelled``."""
    command_status: str | None = None
    detail: str | None = None
    session_id: str | None
    """The session to follow at ``GET /api/v1/sessions/{session_id}`` once the station has started it."""
    account_id: str
    held: str
    currency: str
    id_tag: str | None


def _public(state: ChargeState, start: ChargeStart | None = None) -> ChargePublic:
    hold = state.hold
    return ChargePublic(
        charge_id=state.charge_id,
        state=state.state,
        command_status=start.status.value if start else None,
        detail=start.detail if start else None,
        session_id=state.session_id,
        account_id=hold.account_id,
        held=money(hold.amount_minor, hold.currency),
        currency=hold.currency,
        id_tag=hold.id_tag,
    )


async def _check_payer(billing: BillingDep, principal: Principal, body: ChargeStartRequest) -> None:
    if body.account_id is not None:
        await account_for(billing, principal, body.account_id, write=True)
    elif body.card_uid is not None:
        card = await billing.service.cards.get(body.card_uid)
        if card is None:
            raise InvalidInput("card cannot pay", ["card_uid: unknown card"])
        check_owner(principal, card.user_id, write=True)


@router.post(
    "/start",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChargePublic,
    summary="Hold money, then ask the station to start",
    responses={402: {"description": "balance too low"}, 409: {}, 503: {}, 504: {}},
)
async def start(
    body: ChargeStartRequest,
    billing: BillingDep,
    principal: AnyUser,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> ChargePublic | JSONResponse:
    await _check_payer(billing, principal, body)
    if await billing.service.stations.get(body.station_id) is None:
        raise NotFound(f"no station {body.station_id!r}")
    started = await billing.charges.start(
        station_id=body.station_id,
        evse_id=body.evse_id,
        account_id=body.account_id,
        card_uid=body.card_uid,
        idempotency_key=idempotency_key,
    )
    state = await billing.charges.state(started.charge_id)
    public = _public(state, started)
    if started.status is CommandStatus.ACCEPTED:
        return public
    code = _FAILURE_STATUS.get(started.status, 409)
    problem = {
        **public.model_dump(mode="json"),
        "type": "about:blank",
        "title": "Station did not start",
        "status": code,
        "detail": f"{started.detail}; the hold was released",
    }
    return JSONResponse(problem, status_code=code, media_type=PROBLEM_JSON)


async def _state(billing: BillingDep, principal: Principal, charge_id: str) -> ChargeState:
    state = await billing.charges.state(charge_id)
    await account_for(billing, principal, state.hold.account_id)
    return state


@router.get("/{charge_id}", summary="Follow a charge")
async def follow(charge_id: ChargeId, billing: BillingDep, principal: AnyUser) -> ChargePublic:
    return _public(await _state(billing, principal, charge_id))


@router.post(
    "/{charge_id}/stop",
    response_model=ChargePublic,
    summary="Stop the session (or cancel a charge whose session has not started)",
)
async def stop(charge_id: ChargeId, billing: BillingDep, principal: AnyUser) -> ChargePublic | JSONResponse:
    state = await _state(billing, principal, charge_id)
    await account_for(billing, principal, state.hold.account_id, write=True)
    result = await billing.charges.stop(charge_id)
    after = _public(await billing.charges.state(charge_id))
    after.command_status, after.detail = result.status.value, result.detail
    if result.ok:
        return after
    code = _FAILURE_STATUS.get(result.status, 409)
    problem = {"type": "about:blank", "title": "Station did not stop", "status": code, "detail": result.detail}
    return JSONResponse({**after.model_dump(mode="json"), **problem}, status_code=code, media_type=PROBLEM_JSON)
