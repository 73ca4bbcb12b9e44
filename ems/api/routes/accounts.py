"""Prepaid accounts: balance, statement (ledger lines), top-ups with an Idempotency-Key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import AnyUser, Operator
from ems.api.billing_support import MONEY_PATTERN, BillingDep, account_for, balance_fields, money, parse_money
from ems.domain.billing import Applied
from ems.domain.ledger import Book

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])

AccountId = Annotated[str, Path(min_length=1, max_length=64)]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Required: a replay returns the first result; the same key with another body is 409",
    ),
]


class AccountPublic(BaseModel):
    id: str
    user_id: str | None
    currency: str
    balance: str
    """Available to spend, e.g. ``"16.00"``."""
    held: str
    """Reserved for running sessions."""
    uncollected: str
    """Owed from sessions that overran an empty wallet."""
    created_at: datetime


class StatementLine(BaseModel):
    id: str
    kind: str
    at: datetime
    amount: str
    """Change of the available balance."""
    held_change: str
    charged: str
    """Session cost taken by this line (captures)."""
    balance_after: str
    held_after: str
    session_id: str | None
    reference: str | None
    memo: str

    @classmethod
    def of(cls, line: Applied) -> StatementLine:
        m, c = line.movement, line.movement.currency
        return cls(
            id=m.id,
            kind=m.kind.value,
            at=m.at,
            amount=money(m.on(Book.WALLET), c),
            held_change=money(m.on(Book.HELD), c),
            charged=money(m.on(Book.REVENUE) if m.on(Book.REVENUE) > 0 else 0, c),
            balance_after=money(line.balance_after.available_minor, c),
            held_after=money(line.balance_after.held_minor, c),
            session_id=m.session_id,
            reference=m.reference,
            memo=m.memo,
        )


class Statement(BaseModel):
    account_id: str
    currency: str
    balance: str
    lines: list[StatementLine]


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=MONEY_PATTERN, examples=["20.00"])
    currency: str = Field(min_length=1, max_length=8, examples=["EUR"])
    reference: str | None = Field(default=None, max_length=200, description="Receipt number, cash desk, ...")


class TopUpPublic(BaseModel):
    movement_id: str
    account_id: str
    amount: str
    currency: str
    balance: str
    at: datetime


@router.get("/{account_id}", summary="An account and its balance")
async def get_account(account_id: AccountId, billing: BillingDep, principal: AnyUser) -> AccountPublic:
    account = await account_for(billing, principal, account_id)
    balance = await billing.service.billing.ledger.balance(account_id)
    return AccountPublic(
        id=account.id,
        user_id=account.user_id,
        currency=account.currency,
        created_at=account.created_at,
        **balance_fields(balance),
    )


@router.get("/{account_id}/statement", summary="Ledger lines, newest first, with the balance after each")
async def statement(
    account_id: AccountId,
    billing: BillingDep,
    principal: AnyUser,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Statement:
    account = await account_for(billing, principal, account_id)
    lines = await billing.service.billing.ledger.statement(account_id, limit=limit)
    balance = await billing.service.billing.ledger.balance(account_id)
    return Statement(
        account_id=account.id,
        currency=account.currency,
        balance=money(balance.available_minor, account.currency),
        lines=[StatementLine.of(line) for line in lines],
    )


@router.post("/{account_id}/top-ups", status_code=status.HTTP_201_CREATED, summary="Add money to an account")
async def top_up(
    account_id: AccountId,
    body: TopUpCreate,
    billing: BillingDep,
    response: Response,
    principal: Operator,
    idempotency_key: IdempotencyKey,
) -> TopUpPublic:
    await account_for(billing, principal, account_id, write=True)
    amount = parse_money(body.amount, body.currency)
    applied = await billing.wallet.top_up(account_id, amount, idempotency_key=idempotency_key, reference=body.reference)
    if applied.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    m = applied.movement
    return TopUpPublic(
        movement_id=m.id,
        account_id=m.account_id,
        amount=money(m.on(Book.WALLET), m.currency),
        currency=m.currency,
        balance=money(applied.balance_after.available_minor, m.currency),
        at=m.at,
    )
