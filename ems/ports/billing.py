"""The billing stores (users, ledger, tariffs, costs) and the payment-provider port."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ems.domain.billing import (
    Account,
    Applied,
    AssignmentScope,
    IdempotencyClaim,
    PaymentCheckout,
    SessionCost,
    TariffAssignment,
    User,
)
from ems.domain.ledger import AccountState, Balance, Decision, Hold
from ems.domain.money import Money
from ems.domain.tariff import Tariff


class UserStore(Protocol):
    async def add(self, user: User) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def all(self, *, limit: int = 1000) -> list[User]: ...

    async def update(self, user: User) -> None:
        """Raises ``NotFound``."""
        ...


class LedgerStore(Protocol):
    """Accounts, their double-entry ledger, holds and idempotency keys.

    ``apply`` is the only way money moves: in one transaction it locks the account (PostgreSQL
    ``SELECT ... FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``), answers an idempotent replay from
    the key's first result (same key, other request: ``IdempotencyConflict``), reads the
    ``AccountState``, calls the pure ``decide`` rule, re-checks that no balance goes below zero,
    and writes the movement, its entries, the holds it touched, ``cost`` and the key.
    """

    async def open_account(self, account: Account) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def account(self, account_id: str) -> Account | None: ...

    async def accounts_for_user(self, user_id: str) -> list[Account]: ...

    async def balance(self, account_id: str) -> Balance:
        """Sum of the account's entries per book; raises ``NotFound``."""
        ...

    async def apply(
        self,
        account_id: str,
        decide: Callable[[AccountState], Decision],
        *,
        idempotency: IdempotencyClaim | None = None,
        cost: SessionCost | None = None,
        session_id: str | None = None,
    ) -> Applied:
        """``session_id``: also read that session's revenue (charged minus refunded) into the state."""
        ...

    async def statement(self, account_id: str, *, limit: int = 100) -> list[Applied]:
        """Movements with the balance after each, newest first."""
        ...

    async def hold(self, hold_id: str) -> Hold | None: ...

    async def hold_for_session(self, session_id: str) -> Hold | None: ...

    async def open_holds(self, *, id_tag: str | None = None, unlinked_only: bool = False) -> list[Hold]:
        """Open holds, oldest first; ``unlinked_only``: not yet tied to a session (app starts in flight)."""
        ...

    async def link_hold(self, hold_id: str, session_id: str) -> Hold:
        """Tie an open, unlinked hold to the session it pays for (no money moves); raises ``NotFound``."""
        ...


class TariffStore(Protocol):
    async def add(self, tariff: Tariff) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def get(self, tariff_id: str) -> Tariff | None: ...

    async def all(self) -> list[Tariff]: ...

    async def update(self, tariff: Tariff) -> None:
        """Raises ``NotFound``."""
        ...

    async def delete(self, tariff_id: str) -> bool:
        """Raises ``Conflict`` while the tariff is assigned."""
        ...

    async def assign(self, assignment: TariffAssignment) -> None:
        """Make ``tariff_id`` the one for the scope (replacing any); raises ``NotFound`` for an unknown tariff."""
        ...

    async def unassign(self, scope: AssignmentScope, scope_id: str) -> bool: ...

    async def assignments(self) -> list[TariffAssignment]: ...


class CostStore(Protocol):
    async def add(self, cost: SessionCost) -> bool:
        """Record a session's cost once; ``False`` (nothing written) if it has one already."""
        ...

    async def get(self, session_id: str) -> SessionCost | None: ...

    async def query(
        self,
        *,
        account_id: str | None = None,
        station_id: str | None = None,
        card_uid: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[SessionCost]:
        """By session start time, newest first."""
        ...


class PaymentProvider(Protocol):
    """A payment service for top-ups (card, wallet, bank). Confirmation arrives on the signed webhook
    (``POST /api/v1/payments/{provider}/webhook``), never from the redirect."""

    name: str

    async def create_checkout(self, account_id: str, amount: Money, *, return_url: str) -> PaymentCheckout: ...


class BillingStores(Protocol):
    @property
    def users(self) -> UserStore: ...

    @property
    def ledger(self) -> LedgerStore: ...

    @property
    def tariffs(self) -> TariffStore: ...

    @property
    def costs(self) -> CostStore: ...
