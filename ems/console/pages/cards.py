"""RFID cards: the list, registering a card (prepaid on a user's account, or personal), blocking one."""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ems.console.auth import Viewer
from ems.console.context import Console
from ems.domain.card import Card, CardMode, CardStatus
from ems.errors import Conflict, NotFound
from ems.services.admin import register_card

CARD_UID = re.compile(r"^[A-Za-z0-9._:-]{1,36}$")
"""OCPP 2.0.1 IdToken: at most 36 characters (as the API's card routes)."""


def register(console: Console) -> None:
    storage, billing, clock = console.storage, console.billing, console.clock

    async def cards_page(
        request: Request,
        viewer: Viewer,
        *,
        notice: str = "",
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> HTMLResponse:
        users = {u.id: u for u in await billing.service.billing.users.all(limit=10_000)}
        return console.page(
            request,
            "cards.html",
            viewer,
            cards=await storage.cards.all(),
            users=users,
            notice=notice,
            status=status,
            title="Cards",
            now=clock.now(),
            errors=errors or {},
            values=values or {},
        )

    @console.post("/cards")
    async def card_add(request: Request, viewer: Viewer) -> Response:
        fields = await console.posted(request, viewer)
        uid = fields.get("uid", "").strip()
        label = fields.get("label", "").strip() or None
        user_id = fields.get("user_id", "").strip() or None
        errors: dict[str, str] = {}
        if not CARD_UID.match(uid):
            errors["uid"] = "1 to 36 letters, digits or . _ : - (what the reader sends)."
        if label is not None and len(label) > 200:
            errors["label"] = "At most 200 characters."
        account_id = None
        if user_id is not None:
            accounts = await billing.service.billing.ledger.accounts_for_user(user_id)
            if not accounts:
                errors["user_id"] = "This user has no prepaid account."
            else:
                account_id = accounts[0].id

        async def add() -> str:
            card = Card(
                uid=uid,
                label=label,
                created_at=clock.now(),
                mode=CardMode.COMMERCIAL if account_id else CardMode.PERSONAL,
                account_id=account_id,
                user_id=user_id,
            )
            await register_card(storage.cards, card)
            kind = "prepaid, on the user's account" if account_id else "personal: charges without billing"
            return f"Card {uid} registered ({kind})."

        return await console.submit(
            lambda **shown: cards_page(request, viewer, **shown),
            errors,
            add,
            values=fields,
            refusals=(Conflict,),
            field="uid",
        )

    @console.get("/cards")
    async def cards_view(request: Request, viewer: Viewer) -> Response:
        return await cards_page(request, viewer)

    @console.post("/cards/{uid}/status")
    async def card_status(request: Request, viewer: Viewer, uid: str) -> Response:
        fields = await console.posted(request, viewer)
        card = await storage.cards.get(uid)
        if card is None:
            raise NotFound(f"no card {uid!r}")
        try:
            new = CardStatus(fields.get("status", ""))
        except ValueError:
            return await cards_page(request, viewer, notice="Choose a card status.", status=422)
        await storage.cards.update(replace(card, status=new))
        return await cards_page(request, viewer, notice=f"Card {uid} is now {new.value}.")
