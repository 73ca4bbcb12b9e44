"""Users (drivers) with their prepaid account, and their usage records."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import AnyUser, Operator, Services
from ems.api.billing_support import BillingDep, check_owner
from ems.api.routes.sessions import CostPublic
from ems.domain.billing import User
from ems.domain.driver import MAX_PIN_DIGITS, MIN_PIN_DIGITS
from ems.errors import InvalidInput, NotFound
from ems.services.drivers import DriverAuth

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=64)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    group: str | None = Field(default=None, max_length=64, description="User group, for group tariffs")
    currency: str | None = Field(default=None, description="Currency of the user's account; default: the operator's")
    pin: str | None = Field(
        default=None,
        pattern=rf"^[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}$",
        description="PIN for the driver web pages (sign in with phone and PIN); stored hashed. Needs `phone`.",
    )


class PinSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: str = Field(
        pattern=rf"^[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}$",
        description=f"{MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits; stored hashed, never shown again",
    )


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
    pin_set: bool = False
    """True when the driver can sign in to the web pages with phone and PIN."""


async def _public(billing: BillingDep, user: User, services: Services | None = None) -> UserPublic:
    accounts = await billing.service.billing.ledger.accounts_for_user(user.id)
    pin_set = services is not None and await services.storage.driver_auth.pin(user.id) is not None
    return UserPublic(
        id=user.id,
        name=user.name,
        phone=user.phone,
        email=user.email,
        group=user.group,
        account_id=accounts[0].id if accounts else None,
        created_at=user.created_at,
        pin_set=pin_set,
    )


def _drivers(services: Services, billing: BillingDep) -> DriverAuth:
    return DriverAuth(services.storage.driver_auth, billing.service.billing.users, services.clock)


async def _get(billing: BillingDep, user_id: str) -> User:
    user = await billing.service.billing.users.get(user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return user


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user and their prepaid account")
async def create_user(body: UserCreate, billing: BillingDep, services: Services, _: Operator) -> UserPublic:
    if body.pin is not None and not body.phone:
        raise InvalidInput("invalid user", ["pin: needs a phone number to sign in with"])
    currency = body.currency or billing.service.policy.default_currency
    user, _account = await billing.wallet.create_user(
        body.name, currency=currency, phone=body.phone, email=body.email, group=body.group
    )
    if body.pin is not None:
        await _drivers(services, billing).set_pin(user.id, body.pin)
    return await _public(billing, user, services)


@router.put("/{user_id}/pin", summary="Set or reset a driver's PIN for the web pages (signs them out everywhere)")
async def set_pin(user_id: UserId, body: PinSet, billing: BillingDep, services: Services, _: Operator) -> UserPublic:
    user = await _get(billing, user_id)
    await _drivers(services, billing).set_pin(user.id, body.pin)
    return await _public(billing, user, services)


@router.get("", summary="All users")
async def list_users(
    billing: BillingDep, _: Operator, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[UserPublic]:
    return [await _public(billing, u) for u in await billing.service.billing.users.all(limit=limit)]


@router.get("/{user_id}", summary="One user")
async def get_user(user_id: UserId, billing: BillingDep, services: Services, principal: AnyUser) -> UserPublic:
    check_owner(principal, user_id)
    return await _public(billing, await _get(billing, user_id), services)


@router.patch("/{user_id}", summary="Change a user's name, contact or group")
async def update_user(
    user_id: UserId, body: UserUpdate, billing: BillingDep, services: Services, _: Operator
) -> UserPublic:
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
    if updated.phone != user.phone:
        await _drivers(services, billing).phone_changed(updated)
    return await _public(billing, updated, services)


@router.get("/{user_id}/sessions", summary="A user's usage records: priced sessions, newest first")
async def user_sessions(user_id: UserId, billing: BillingDep, principal: AnyUser) -> list[CostPublic]:
    check_owner(principal, user_id)
    await _get(billing, user_id)
    out: list[CostPublic] = []
    for account in await billing.service.billing.ledger.accounts_for_user(user_id):
        out += [CostPublic.of(c) for c in await billing.service.billing.costs.query(account_id=account.id)]
    return out
