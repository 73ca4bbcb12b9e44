"""Users (drivers) with their prepaid account, and their usage records."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import AnyUser, Operator
from ems.api.billing_support import BillingDep, check_owner
from ems.api.routes.sessions import CostPublic
from ems.domain.billing import User
from ems.errors import NotFound

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=64)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    group: str | None = Field(default=None, max_length=64, description="User group, for group tariffs")
    currency: str | None = Field(default=None, description="Currency of the user's account; default: the operator's")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    group: str | None = Field(default=None, max_length=64)


class UserPublic(BaseModel):
    id: str
    name: str
    phone: str | None
    email: str | None
    group: str | None
    account_id: str | None
    created_at: datetime


async def _public(billing: BillingDep, user: User) -> UserPublic:
    accounts = await billing.service.billing.ledger.accounts_for_user(user.id)
    return UserPublic(
        id=user.id,
        name=user.name,
        phone=user.phone,
        email=user.email,
        group=user.group,
        account_id=accounts[0].id if accounts else None,
        created_at=user.created_at,
    )


async def _get(billing: BillingDep, user_id: str) -> User:
    user = await billing.service.billing.users.get(user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return user


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user and their prepaid account")
async def create_user(body: UserCreate, billing: BillingDep, _: Operator) -> UserPublic:
    currency = body.currency or billing.service.policy.default_currency
    user, _account = await billing.wallet.create_user(
        body.name, currency=currency, phone=body.phone, email=body.email, group=body.group
    )
    return await _public(billing, user)


@router.get("", summary="All users")
async def list_users(
    billing: BillingDep, _: Operator, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[UserPublic]:
    return [await _public(billing, u) for u in await billing.service.billing.users.all(limit=limit)]


@router.get("/{user_id}", summary="One user")
async def get_user(user_id: UserId, billing: BillingDep, principal: AnyUser) -> UserPublic:
    check_owner(principal, user_id)
    return await _public(billing, await _get(billing, user_id))


@router.patch("/{user_id}", summary="Change a user's name, contact or group")
async def update_user(user_id: UserId, body: UserUpdate, billing: BillingDep, _: Operator) -> UserPublic:
    user = await _get(billing, user_id)
    fields = body.model_fields_set
    updated = replace(
        user,
        name=body.name if body.name is not None else user.name,
        phone=body.phone if "phone" in fields else user.phone,
        email=body.email if "email" in fields else user.email,
        group=body.group if "group" in fields else user.group,
    )
    await billing.service.billing.users.update(updated)
    return await _public(billing, updated)


@router.get("/{user_id}/sessions", summary="A user's usage records: priced sessions, newest first")
async def user_sessions(user_id: UserId, billing: BillingDep, principal: AnyUser) -> list[CostPublic]:
    check_owner(principal, user_id)
    await _get(billing, user_id)
    out: list[CostPublic] = []
    for account in await billing.service.billing.ledger.accounts_for_user(user_id):
        out += [CostPublic.of(c) for c in await billing.service.billing.costs.query(account_id=account.id)]
    return out
