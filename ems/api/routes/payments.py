"""Top-ups paid outside ems: the payment provider's webhook, HMAC-verified, replay-safe.

No API key: the provider proves itself with ``EMS-Signature`` (see ``ems.billing.webhook``).
Body: ``{"id": "<event id>", "type": "payment.succeeded", "account_id", "amount": "20.00", "currency"}``.
An event credited before is answered ``200 {"status": "duplicate"}`` and credits nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ems.api.auth import Services
from ems.api.billing_support import MONEY_PATTERN, BillingDep, money, parse_money
from ems.billing.webhook import SIGNATURE_HEADER, InvalidSignature, verify
from ems.domain.ledger import Book
from ems.errors import InvalidInput, NotAvailable
from ems.services.wallet import PaymentEvent

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])


class PaymentWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    type: Literal["payment.succeeded"]
    account_id: str = Field(min_length=1, max_length=64)
    amount: str = Field(pattern=MONEY_PATTERN)
    currency: str = Field(min_length=1, max_length=8)


@router.post("/{provider}/webhook", summary="A payment provider confirms a top-up (HMAC-signed)")
async def webhook(
    provider: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$")],
    request: Request,
    services: Services,
    billing: BillingDep,
) -> dict[str, str]:
    if billing.webhook_secret is None:
        raise NotAvailable("payment webhooks are not configured (EMS_PAYMENT_WEBHOOK_SECRET)")
    raw = await request.body()
    try:
        verify(billing.webhook_secret, request.headers.get(SIGNATURE_HEADER), raw, services.clock.now())
    except InvalidSignature as exc:
        raise HTTPException(401, str(exc)) from exc
    try:
        event = PaymentWebhook.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput("invalid payment event", [f"{e['loc']}: {e['msg']}" for e in exc.errors()]) from exc
    amount = parse_money(event.amount, event.currency)
    applied = await billing.wallet.credit_payment(PaymentEvent(provider, event.id, event.account_id, amount))
    m = applied.movement
    return {
        "status": "duplicate" if applied.replayed else "credited",
        "movement_id": m.id,
        "account_id": m.account_id,
        "amount": money(m.on(Book.WALLET), m.currency),
        "currency": m.currency,
    }
