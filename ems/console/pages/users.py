"""Users and their prepaid accounts: the list, a new user, one user's balance and statement, top-ups."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ems.console.auth import Viewer
from ems.console.context import Console
from ems.domain.ledger import Balance, Book, MovementKind
from ems.domain.money import CurrencyError, Money, check_currency, parse_decimal
from ems.errors import Conflict, InvalidInput, NotFound


def _available(b: Balance) -> str:
    return Money.from_minor(b.available_minor, b.currency).as_str()


def register(console: Console) -> None:
    billing = console.billing
    books = billing.service.billing

    async def users_page(
        request: Request,
        viewer: Viewer,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        rows = []
        for u in await books.users.all(limit=1000):
            accounts = await books.ledger.accounts_for_user(u.id)
            balance = await books.ledger.balance(accounts[0].id) if accounts else None
            rows.append(
                {
                    "user": u,
                    "account": accounts[0] if accounts else None,
                    "balance": None if balance is None else _available(balance),
                }
            )
        return console.page(
            request,
            "users.html",
            viewer,
            rows=rows,
            errors=errors or {},
            values=values or {},
            notice=notice,
            status=status,
            title="Users",
            default_currency=billing.service.policy.default_currency,
        )

    @console.get("/users")
    async def users_view(request: Request, viewer: Viewer) -> Response:
        return await users_page(request, viewer)

    @console.post("/users")
    async def create_user(request: Request, viewer: Viewer) -> Response:
        fields = await console.posted(request, viewer)
        name = fields.get("name", "").strip()
        currency = fields.get("currency", "").strip().upper() or billing.service.policy.default_currency
        email = fields.get("email", "").strip() or None
        errors: dict[str, str] = {}
        if email is not None and ("@" not in email or " " in email):
            errors["email"] = "Not an email address."
        if not name or len(name) > 200:
            errors["name"] = "Enter a name (at most 200 characters)."
        try:
            check_currency(currency)
        except CurrencyError as exc:
            errors["currency"] = str(exc)

        async def create() -> str:
            user, _ = await billing.wallet.create_user(
                name,
                currency=currency,
                phone=fields.get("phone", "").strip() or None,
                email=email,
                group=fields.get("group", "").strip() or None,
            )
            return f"User {user.name} created."

        return await console.submit(lambda **shown: users_page(request, viewer, **shown), errors, create, values=fields)

    async def user_page(
        request: Request,
        viewer: Viewer,
        user_id: str,
        *,
        errors: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        user = await books.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        accounts = await books.ledger.accounts_for_user(user.id)
        account = accounts[0] if accounts else None
        balance = statement = None
        if account is not None:
            balance = _available(await books.ledger.balance(account.id))
            statement = await books.ledger.statement(account.id, limit=50)
        cards = [c for c in await console.storage.cards.all() if c.user_id == user.id]
        return console.page(
            request,
            "user.html",
            viewer,
            user=user,
            account=account,
            balance=balance,
            statement=statement or [],
            cards=cards,
            errors=errors or {},
            notice=notice,
            status=status,
            title=f"User {user.name}",
            book=Book,
            idempotency=secrets.token_urlsafe(12),
        )

    @console.get("/users/{user_id}")
    async def user_view(request: Request, viewer: Viewer, user_id: str) -> Response:
        return await user_page(request, viewer, user_id)

    @console.post("/users/{user_id}/top-up")
    async def top_up(request: Request, viewer: Viewer, user_id: str) -> Response:
        fields = await console.posted(request, viewer)
        accounts = await books.ledger.accounts_for_user(user_id)
        if not accounts:
            raise NotFound(f"no account for user {user_id!r}")
        account = accounts[0]
        errors: dict[str, str] = {}
        amount = fields.get("amount", "").strip()
        try:
            value = parse_decimal(amount)
            if value <= 0:
                errors["amount"] = "Enter a positive amount, e.g. 20.00."
        except ValueError:
            errors["amount"] = "Enter an amount like 20.00."
        reference = fields.get("reference", "").strip() or None
        if reference is not None and len(reference) > 200:
            errors["reference"] = "At most 200 characters."

        async def credit() -> str:
            applied = await billing.wallet.top_up(
                account.id,
                Money(value, account.currency),
                idempotency_key=fields.get("idempotency") or None,
                reference=reference or f"console: {viewer.name}",
            )
            after = Money.from_minor(applied.balance_after.available_minor, account.currency).as_str()
            note = " (already applied)" if applied.replayed else ""
            return f"Topped up {value} {account.currency}{note}; balance {after}."

        return await console.submit(
            lambda **shown: user_page(request, viewer, user_id, **shown),
            errors,
            credit,
            refusals=(InvalidInput, Conflict),
            field="amount",
        )

    @console.get("/top-ups")
    async def top_ups_page(request: Request, viewer: Viewer) -> Response:
        lines: list[dict[str, Any]] = []
        for u in await books.users.all(limit=1000):
            for account in await books.ledger.accounts_for_user(u.id):
                for line in await books.ledger.statement(account.id, limit=200):
                    m = line.movement
                    if m.kind is MovementKind.TOP_UP:
                        lines.append(
                            {
                                "user": u,
                                "at": m.at,
                                "reference": m.reference,
                                "amount": Money.from_minor(m.on(Book.WALLET), m.currency).as_str(),
                                "currency": m.currency,
                            }
                        )
        lines.sort(key=lambda r: r["at"], reverse=True)
        return console.page(request, "top_ups.html", viewer, lines=lines[:300], title="Top-ups")
