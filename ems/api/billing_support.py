"""What the billing routers share: the ``Billing`` dependency (built by the composition root), money parsing,
ownership checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException

from ems.api.auth import Principal, Services
from ems.domain.access import Role
from ems.domain.billing import Account
from ems.domain.ledger import Balance
from ems.domain.money import CurrencyError, Money, check_currency, parse_decimal
from ems.errors import InvalidInput, NotFound
from ems.services.billing_setup import Billing

MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
"""Money travels as a decimal string ("16.00"), never a JSON number (floats are not exact)."""


def get_billing(services: Services) -> Billing:
    """The billing services the composition root built (shared with the OCPP event path)."""
    return services.billing


BillingDep = Annotated[Billing, Depends(get_billing)]


def parse_money(amount: str, currency: str, field: str = "amount") -> Money:
    """``amount`` in ``currency`` or ``InvalidInput`` (422) naming what is wrong."""
    problems = []
    try:
        check_currency(currency)
    except CurrencyError as exc:
        problems.append(f"currency: {exc}")
    try:
        value = parse_decimal(amount)
    except ValueError as exc:
        problems.append(f"{field}: {exc}")
    if problems:
        raise InvalidInput("invalid amount", problems)
    return Money(value, currency)


def money(minor: int, currency: str) -> str:
    return Money.from_minor(minor, currency).as_str()


def balance_fields(balance: Balance) -> dict[str, str]:
    return {
        "balance": money(balance.available_minor, balance.currency),
        "held": money(balance.held_minor, balance.currency),
        "uncollected": money(-balance.uncollected_minor, balance.currency),
    }


def check_owner(principal: Principal, user_id: str | None, *, write: bool = False) -> None:
    """Drivers may see (and, for ``write``, act on) only their own user's records; staff see all."""
    staff = principal.at_least(Role.OPERATOR if write else Role.ANALYST)
    if not staff and (principal.user_id is None or principal.user_id != user_id):
        raise HTTPException(403, "a driver key may only use its own account, cards and sessions")


async def account_for(billing: Billing, principal: Principal, account_id: str, *, write: bool = False) -> Account:
    account = await billing.service.billing.ledger.account(account_id)
    if account is None:
        raise NotFound(f"no account {account_id!r}")
    check_owner(principal, account.user_id, write=write)
    return account
