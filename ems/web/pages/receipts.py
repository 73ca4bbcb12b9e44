"""A finished charge's receipt, and "My sessions": the balance, the running charge, every priced session."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ems.domain.billing import LineKind, SessionCost
from ems.domain.money import Money
from ems.web import views
from ems.web.context import ChargeId, DriverSite, Visit


async def owns_cost(site: DriverSite, c: Visit, cost: SessionCost) -> bool:
    """Whether the signed-in driver paid the session: from their account, or with one of their cards."""
    if c.user is None:
        return False
    if c.account is not None and cost.account_id == c.account.id:
        return True
    if cost.card_uid:
        card = await site.s.cards.get(cost.card_uid)
        return card is not None and card.user_id == c.user.id
    return False


def register(router: APIRouter, site: DriverSite) -> None:
    s = site.s
    books = s.billing.service.billing

    @router.get("/me")
    async def me(request: Request) -> Response:
        c = await site.visit(request)
        t = c.texts
        if c.user is None:
            return site.render(c, "signin_page.html", back="/me")
        costs: dict[str, SessionCost] = {}
        if c.account is not None:
            for cost in await books.costs.query(account_id=c.account.id, limit=200):
                costs[cost.session_id] = cost
        card_rows = []
        for card in await s.cards.all():
            if card.user_id != c.user.id:
                continue
            spent = await books.costs.query(card_uid=card.uid, limit=200)
            for cost in spent:
                costs.setdefault(cost.session_id, cost)
            by_currency: dict[str, Decimal] = {}
            for cost in spent:
                by_currency[cost.cdr.currency] = by_currency.get(cost.cdr.currency, Decimal(0)) + cost.cdr.total.amount
            card_rows.append(
                {
                    "uid": card.uid,
                    "label": card.label or "",
                    "sessions": len(spent),
                    "spent": ", ".join(t.money(v, k) for k, v in by_currency.items())
                    or t.money(Decimal(0), c.account.currency if c.account else "EUR"),
                }
            )
        rows = []
        for cost in sorted(costs.values(), key=lambda x: x.cdr.started_at, reverse=True):
            tz = await site.timezone(cost.station_id)
            rows.append(
                {
                    "session_id": cost.session_id,
                    "when": t.when(cost.cdr.started_at, tz),
                    "station": cost.station_id,
                    "energy": t.number(cost.cdr.energy_wh / 1000, 2) + " kWh",
                    "total": t.money(cost.cdr.total.amount, cost.cdr.currency),
                    "card": cost.card_uid if cost.card_uid and not cost.card_uid.startswith("APP") else "",
                }
            )
        open_charge = await site.open_charge(c.account) if c.account else None
        return site.render(
            c, "sessions.html", rows=rows, cards=card_rows, balance=await site.balance(c), open_charge=open_charge
        )

    @router.get("/me/sessions/{session_id}")
    async def receipt(request: Request, session_id: ChargeId) -> Response:
        c = await site.visit(request)
        t = c.texts
        if c.user is None:
            return RedirectResponse("/me", status_code=303)
        cost = await books.costs.get(session_id)
        if cost is None:
            hold = await books.ledger.hold_for_session(session_id)
            if hold is not None and c.account is not None and hold.account_id == c.account.id:
                return site.render(
                    c,
                    "message.html",
                    title=t.gettext("Your receipt is being prepared"),
                    message=t.gettext("The charger has stopped; the receipt appears here in a moment."),
                    refresh_s=2,
                )
            return site.not_found(c)
        if not await owns_cost(site, c, cost):
            return site.not_found(c)
        tz = await site.timezone(cost.station_id)
        cdr = cost.cdr
        lines = [
            {
                "label": views.line_label(t, li.kind, li.description),
                "quantity": f"{t.number(li.quantity, 3 if li.unit == 'kWh' else 2)} {li.unit}"
                if li.unit not in ("", "session")
                else "",
                "amount": t.money(li.amount.amount, li.amount.currency),
            }
            for li in cdr.line_items
            if li.kind is not LineKind.VAT
        ]
        return site.render(
            c,
            "receipt.html",
            cost=cost,
            lines=lines,
            started=t.when(cdr.started_at, tz),
            stopped=t.when(cdr.stopped_at, tz),
            energy=t.number(cdr.energy_wh / 1000, 3) + " kWh",
            net=t.money(cdr.net.amount, cdr.currency),
            vat=t.money(cdr.vat.amount, cdr.currency),
            total=t.money(cdr.total.amount, cdr.currency),
            total_plain=str(cdr.total.amount),
            charged=t.money(Money.from_minor(cost.captured_minor, cdr.currency).amount, cdr.currency),
            balance=await site.balance(c),
        )
