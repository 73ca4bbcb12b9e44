"""RFID cards (OCPP id tokens)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ems.api.auth import Analyst, Operator, Services
from ems.domain.card import Card, CardMode, CardStatus
from ems.errors import Conflict, NotFound

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


class CardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CardStatus | None = None
    expires_at: AwareDatetime | None = None
    label: str | None = Field(default=None, max_length=200)


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
    )
    try:
        await services.storage.cards.add(card)
    except Conflict as exc:
        raise Conflict(f"card {body.uid!r} already exists") from exc
    return CardPublic.of(card)


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
    )
    await services.storage.cards.update(updated)
    return CardPublic.of(updated)


@router.delete("/{uid}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a card")
async def delete_card(uid: CardUid, services: Services, _: Operator) -> None:
    if not await services.storage.cards.delete(uid):
        raise NotFound(f"no card {uid!r}")
