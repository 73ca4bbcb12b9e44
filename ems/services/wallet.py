"""Users, accounts and money in: top-ups (idempotent), refunds, payments confirmed by a provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from ems.billing.ledger import refund, top_up
from ems.clock import Clock
from ems.domain.billing import Account, Applied, IdempotencyClaim, User
from ems.domain.money import CurrencyError, Money, check_currency
from ems.errors import InvalidInput, NotFound
from ems.ports.billing import BillingStores


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A payment confirmed outside ems (webhook), to be credited once."""

    provider: str
    event_id: str
    account_id: str
    amount: Money


class Wallet:
    def __init__(
        self,
        billing: BillingStores,
        clock: Clock,
        ids: Callable[[], str],
        atomic: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.billing = billing
        self.clock = clock
        self.ids = ids
        self._atomic = atomic or _separately
        """``Storage.transaction``: a user and its account are created together or not at all."""

    async def create_user(
        self,
        name: str,
        *,
        currency: str,
        phone: str | None = None,
        email: str | None = None,
        group: str | None = None,
    ) -> tuple[User, Account]:
        problems = []
        if not name.strip():
            problems.append("name: must not be empty")
        try:
            check_currency(currency)
        except CurrencyError as exc:
            problems.append(f"currency: {exc}")
        if problems:
            raise InvalidInput("invalid user", problems)
        now = self.clock.now()
        user = User(id=self.ids(), name=name.strip(), created_at=now, phone=phone, email=email, group=group)
        account = Account(id=self.ids(), currency=currency, created_at=now, user_id=user.id)
        async with self._atomic():
            await self.billing.users.add(user)
            await self.billing.ledger.open_account(account)
        return user, account

    async def account(self, account_id: str) -> Account:
        account = await self.billing.ledger.account(account_id)
        if account is None:
            raise NotFound(f"account {account_id} does not exist")
        return account

    async def top_up(
        self, account_id: str, amount: Money, *, idempotency_key: str | None = None, reference: str | None = None
    ) -> Applied:
        """Credit ``amount``; with a key, a replay returns the first result and another amount is a conflict."""
        account = await self.account(account_id)
        minor = money_minor(amount, account.currency, "amount")
        claim = None
        if idempotency_key is not None:
            body = {"amount": str(amount.amount), "currency": amount.currency, "reference": reference}
            claim = IdempotencyClaim.for_request(f"top-up:{account_id}", idempotency_key, body)
        movement_id = self.ids()
        return await self.billing.ledger.apply(
            account_id,
            lambda state: top_up(
                state, movement_id=movement_id, amount_minor=minor, at=self.clock.now(), reference=reference
            ),
            idempotency=claim,
        )

    async def credit_payment(self, event: PaymentEvent) -> Applied:
        """Credit a provider-confirmed payment once per (provider, event id)."""
        account = await self.account(event.account_id)
        minor = money_minor(event.amount, account.currency, "amount")
        body = {"account_id": event.account_id, "amount": str(event.amount.amount), "currency": event.amount.currency}
        claim = IdempotencyClaim.for_request(f"payment:{event.provider}", event.event_id, body)
        movement_id = self.ids()
        reference = f"{event.provider}:{event.event_id}"
        return await self.billing.ledger.apply(
            event.account_id,
            lambda state: top_up(
                state, movement_id=movement_id, amount_minor=minor, at=self.clock.now(), reference=reference
            ),
            idempotency=claim,
        )

    async def refund_session(
        self, session_id: str, amount: Money, *, idempotency_key: str | None = None, reason: str | None = None
    ) -> Applied:
        """Give back up to what a prepaid session was charged, less earlier refunds."""
        cost = await self.billing.costs.get(session_id)
        if cost is None or cost.account_id is None:
            raise NotFound(f"session {session_id} has no charge to refund")
        account = await self.account(cost.account_id)
        minor = money_minor(amount, account.currency, "amount")
        claim = None
        if idempotency_key is not None:
            body = {"amount": str(amount.amount), "currency": amount.currency}
            claim = IdempotencyClaim.for_request(f"refund:{session_id}", idempotency_key, body)
        movement_id = self.ids()
        return await self.billing.ledger.apply(
            account.id,
            lambda state: refund(
                state,
                movement_id=movement_id,
                amount_minor=minor,
                refundable_minor=state.session_revenue_minor,
                at=self.clock.now(),
                session_id=session_id,
                reference=reason,
            ),
            idempotency=claim,
            session_id=session_id,
        )


def money_minor(amount: Money, currency: str, field: str) -> int:
    """``amount`` as positive minor units of ``currency``; ``InvalidInput`` naming ``field`` otherwise."""
    problems = []
    if amount.currency != currency:
        problems.append(f"{field}: currency {amount.currency} does not match the account's {currency}")
    if amount.amount <= 0:
        problems.append(f"{field}: must be positive, got {amount.amount}")
    if amount.rounded() != amount:
        problems.append(f"{field}: {amount.amount} has more decimals than {currency} has minor units")
    if problems:
        raise InvalidInput("invalid amount", problems)
    return amount.to_minor()


@asynccontextmanager
async def _separately() -> AsyncIterator[None]:
    """No shared transaction (stores without a unit of work, e.g. the unit tests' fakes)."""
    yield
