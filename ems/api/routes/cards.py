"""RFID cards (OCPP id tokens)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ems.api.auth import Analyst, AnyUser, Operator, Services
from ems.domain.access import Role
from ems.domain.card import Card, CardMode, CardStatus
from ems.domain.money import Money
from ems.errors import InvalidInput, NotFound
from ems.services.admin import register_card

router = APIRouter(prefix="/api/v1/cards", tags=["cards"])

UID_PATTERN = r"^[A-Za-z0-9._:-]+$"
CardUid = Annotated[str, Path(min_length=1, max_length=36, pattern=UID_PATTERN)]
"""OCPP 2.0.1 IdToken is at most 36 characters (1.6 idTag: 20)."""


class CardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str = Field(min_length=1, max_length=36, pattern=UID_PATTERN)
    status: CardStatus = CardStatus.ACCEPTED
    expires_at: AwareDatetime | None = None
    label: str | None = Field(default=None, max_length=200)
    mode: CardMode = Field(default=CardMode.PERSONAL, description="personal: no billing; commercial: prepaid")
    account_id: str | None = Field(default=None, description="The prepaid account (required for commercial)")
    user_id: str | None = Field(default=None, description="Default: the account's user")


class CardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CardStatus | None = None
    expires_at: AwareDatetime | None = None
    label: str | None = Field(default=None, max_length=200)
    mode: CardMode | None = None
    account_id: str | None = None
    user_id: str | None = None


class CardPublic(BaseModel):
    uid: str
    status: CardStatus
    expires_at: datetime | None
    mode: CardMode
    account_id: str | None
    user_id: str | None
    label: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, c: Card) -> CardPublic:
        return cls(
            uid=c.uid,
            status=c.status,
            expires_at=c.expires_at,
            mode=c.mode,
            account_id=c.account_id,
            user_id=c.user_id,
            label=c.label,
            created_at=c.created_at,
        )


@router.get("", summary="All cards")
async def list_cards(services: Services, _: Analyst) -> list[CardPublic]:
    return [CardPublic.of(c) for c in await services.storage.cards.all()]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a card")
async def create_card(body: CardCreate, services: Services, _: Operator) -> CardPublic:
    card = Card(
        uid=body.uid,
        status=body.status,
        expires_at=body.expires_at,
        label=body.label,
        created_at=services.clock.now(),
        mode=body.mode,
        account_id=body.account_id,
        user_id=body.user_id,
    )
    card = await register_card(services.storage.cards, await _with_account(services, card))
    return CardPublic.of(card)


async def _with_account(services: Services, card: Card) -> Card:
    """Check the card's account link (422 when wrong); a linked card's user defaults to the account's."""
    if card.account_id is None:
        if card.mode is CardMode.COMMERCIAL:
            raise InvalidInput("invalid card", ["account_id: a commercial (prepaid) card needs an account"])
        return card
    account = await services.storage.billing.ledger.account(card.account_id)
    if account is None:
        raise InvalidInput("invalid card", [f"account_id: no account {card.account_id!r}"])
    return card if card.user_id is not None else replace(card, user_id=account.user_id)


async def _get(services: Services, uid: str) -> Card:
    card = await services.storage.cards.get(uid)
    if card is None:
        raise NotFound(f"no card {uid!r}")
    return card


@router.get("/{uid}", summary="One card")
async def get_card(uid: CardUid, services: Services, _: Analyst) -> CardPublic:
    return CardPublic.of(await _get(services, uid))


@router.patch("/{uid}", summary="Block, unblock, relabel or change a card's expiry")
async def update_card(uid: CardUid, body: CardUpdate, services: Services, _: Operator) -> CardPublic:
    card = await _get(services, uid)
    fields = body.model_fields_set
    updated = replace(
        card,
        status=body.status if body.status is not None else card.status,
        expires_at=body.expires_at if "expires_at" in fields else card.expires_at,
        label=body.label if "label" in fields else card.label,
        mode=body.mode if body.mode is not None else card.mode,
        account_id=body.account_id if "account_id" in fields else card.account_id,
        user_id=body.user_id if "user_id" in fields else card.user_id,
    )
    updated = await _with_account(services, updated)
    await services.storage.cards.update(updated)
    return CardPublic.of(updated)


@router.delete("/{uid}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a card")
async def delete_card(uid: CardUid, services: Services, _: Operator) -> None:
    if not await services.storage.cards.delete(uid):
        raise NotFound(f"no card {uid!r}")


class CardSpending(BaseModel):
    uid: str
    mode: CardMode
    account_id: str | None
    currency: str | None
    balance: str | None
    """The linked account's available balance."""
    sessions: int
    energy_wh: str
    spent: str | None
    """What the card's account paid for its sessions."""
    records: list[dict[str, Any]]


@router.get("/{uid}/spending", summary="A card's balance and spending records")
async def card_spending(uid: CardUid, services: Services, principal: AnyUser) -> CardSpending:
    card = await _get(services, uid)
    if not principal.at_least(Role.ANALYST) and (principal.user_id is None or principal.user_id != card.user_id):
        raise HTTPException(403, "a driver key may only see its own cards")
    billing = services.storage.billing
    costs = await billing.costs.query(card_uid=uid)
    balance = await billing.ledger.balance(card.account_id) if card.account_id else None
    currency = balance.currency if balance else (costs[0].cdr.currency if costs else None)
    spent = sum(c.captured_minor for c in costs)
    return CardSpending(
        uid=uid,
        mode=card.mode,
        account_id=card.account_id,
        currency=currency,
        balance=Money.from_minor(balance.available_minor, balance.currency).as_str() if balance else None,
        sessions=len(costs),
        energy_wh=str(sum((c.cdr.energy_wh for c in costs), Decimal(0))),
        spent=Money.from_minor(spent, currency).as_str() if currency else None,
        records=[
            {
                "session_id": c.session_id,
                "station_id": c.station_id,
                "started_at": c.cdr.started_at.isoformat(),
                "energy_wh": str(c.cdr.energy_wh),
                "total": c.cdr.total.as_str(),
                "charged": Money.from_minor(c.captured_minor, c.cdr.currency).as_str(),
                "currency": c.cdr.currency,
            }
            for c in costs
        ],
    )
