"""Pay-before-start (the QR / app path): hold in the ledger first, only then ask the station to start.

Sequence of ``start``::

    1. resolve the paying account (directly, or from a prepaid card) and the token the station will present
    2. ledger: hold min(available, max_hold) >= min_hold   -- committed before anything is sent
    3. ChargerControl.execute(RemoteStart(id_tag=token, evse_id, remote_start_id))
    4. ACCEPTED: answer the charge id to follow; the session links to the hold when it starts
       REJECTED / TIMEOUT / OFFLINE / NOT_SUPPORTED: release the hold, answer why

A station that accepted but never starts a session (no car plugged in) leaves an unlinked hold;
``release_stale`` gives it back after ``BillingPolicy.pending_start_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ems.domain.billing import IdempotencyClaim
from ems.domain.card import AuthorizationStatus, CardMode, authorize_card
from ems.domain.commands import CommandResult, CommandStatus, RemoteStart, RemoteStop
from ems.domain.ledger import Hold, HoldStatus
from ems.errors import InvalidInput, NotFound
from ems.services.billing import BillingService

APP_TOKEN_PREFIX = "APP"
_ID_TAG_MAX = 20
"""OCPP 1.6 idTag is CiString20Type: the app token must fit."""


@dataclass(frozen=True, slots=True)
class ChargeStart:
    charge_id: str
    """The charge to follow (``GET /api/v1/charge/{id}``); the hold's id."""
    status: CommandStatus
    hold: Hold
    id_tag: str
    detail: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeState:
    charge_id: str
    hold: Hold
    session_id: str | None
    state: str
    """``pending`` (hold placed, no session yet), ``charging``, ``completed`` or ``cancelled``."""


class PayBeforeStart:
    def __init__(self, service: BillingService) -> None:
        self.service = service

    async def start(
        self,
        *,
        station_id: str,
        evse_id: int | None,
        account_id: str | None = None,
        card_uid: str | None = None,
        idempotency_key: str | None = None,
    ) -> ChargeStart:
        """Hold, then RemoteStart; a replayed ``idempotency_key`` answers the first charge's state, sending nothing."""
        if (account_id is None) == (card_uid is None):
            raise InvalidInput("name who pays", ["give exactly one of account_id or card_uid"])
        hold_id = self.service.ids()
        id_tag = card_uid or (APP_TOKEN_PREFIX + hold_id)[:_ID_TAG_MAX]
        if card_uid is not None:
            card = await self.service.cards.get(card_uid)
            status = authorize_card(card, self.service.clock.now())
            if card is None or status is not AuthorizationStatus.ACCEPTED:
                raise InvalidInput("card cannot pay", [f"card_uid: {status.value}"])
            if card.mode is not CardMode.COMMERCIAL or card.account_id is None:
                raise InvalidInput("card cannot pay", ["card_uid: not a prepaid card with an account"])
            account_id = card.account_id
        account = await self.service.billing.ledger.account(account_id or "")
        if account is None:
            raise NotFound(f"account {account_id} does not exist")
        hold = Hold(
            id=hold_id,
            account_id=account.id,
            currency=account.currency,
            amount_minor=0,
            created_at=self.service.clock.now(),
            id_tag=id_tag,
            station_id=station_id,
            evse_id=evse_id,
        )
        claim = None
        if idempotency_key is not None:
            body = {"station_id": station_id, "evse_id": evse_id, "account_id": account_id, "card_uid": card_uid}
            claim = IdempotencyClaim.for_request(f"charge-start:{account.id}", idempotency_key, body)
        applied = await self.service.hold_available(account, hold, idempotency=claim)  # committed: step 2
        hold = applied.holds[0]
        if applied.replayed:
            first = await self.state(hold.id)
            answer = CommandStatus.REJECTED if first.state == "cancelled" else CommandStatus.ACCEPTED
            return ChargeStart(hold.id, answer, first.hold, hold.id_tag or id_tag, "replayed", first.session_id)
        command = RemoteStart(id_tag=id_tag, evse_id=evse_id, remote_start_id=int(hold_id[:7], 16))
        result = await self.service.control.execute(station_id, command)
        if result.ok:
            current = await self.service.billing.ledger.hold(hold.id)
            session_id = current.session_id if current else None
            return ChargeStart(hold.id, result.status, hold, id_tag, result.detail, session_id)
        await self.service.release_hold(hold.id, memo=f"station {station_id}: remote start {result.status}")
        released = await self.service.billing.ledger.hold(hold.id)
        return ChargeStart(hold.id, result.status, released or hold, id_tag, result.detail or _why(result))

    async def state(self, charge_id: str) -> ChargeState:
        hold = await self.service.billing.ledger.hold(charge_id)
        if hold is None:
            raise NotFound(f"charge {charge_id} does not exist")
        if hold.status is HoldStatus.RELEASED:
            state = "cancelled"
        elif hold.status is HoldStatus.CAPTURED:
            state = "completed"
        else:
            state = "charging" if hold.session_id else "pending"
        return ChargeState(charge_id, hold, hold.session_id, state)

    async def stop(self, charge_id: str) -> CommandResult:
        """Stop the charge: RemoteStop its session, or cancel (release) it if the session never began."""
        current = await self.state(charge_id)
        if current.state == "pending":
            await self.service.release_hold(charge_id, memo="cancelled before the session started")
            return CommandResult(CommandStatus.ACCEPTED, "cancelled before the session started; hold released")
        if current.state != "charging" or current.session_id is None:
            return CommandResult(CommandStatus.REJECTED, f"charge is {current.state}")
        session = await self.service.sessions.get(current.session_id)
        if session is None or session.stopped_at is not None:
            return CommandResult(CommandStatus.REJECTED, "session has ended")
        return await self.service.control.execute(session.station_id, RemoteStop(transaction_id=session.transaction_id))

    async def release_stale(self) -> list[str]:
        """Release app holds whose session never started within ``pending_start_s``; returns their ids."""
        cutoff = self.service.clock.now() - timedelta(seconds=self.service.policy.pending_start_s)
        released = []
        for hold in await self.service.billing.ledger.open_holds(unlinked_only=True):
            if hold.created_at <= cutoff and await self.service.release_hold(hold.id, memo="session never started"):
                released.append(hold.id)
        return released


def _why(result: CommandResult) -> str:
    return {
        CommandStatus.REJECTED: "the station refused to start",
        CommandStatus.TIMEOUT: "the station did not answer in time",
        CommandStatus.OFFLINE: "the station is offline",
        CommandStatus.NOT_SUPPORTED: "the station does not support remote start",
    }.get(result.status, result.status.value)
