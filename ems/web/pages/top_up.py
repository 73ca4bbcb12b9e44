"""Topping up from the charger page (a checkout at the payment provider), and the built-in test provider's
confirmation page."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ems.domain.money import Money
from ems.services.wallet import PaymentEvent
from ems.web.context import ChargeId, DriverSite, EvseId, StationId, charger_url, local_or
from ems.web.pages.charger import charger_page

MAX_TOP_UP = Decimal(500)


def register(router: APIRouter, site: DriverSite) -> None:
    s = site.s

    @router.post("/c/{station_id}/{evse_id}/top-up")
    async def top_up(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        got = await site.posted_at_charger(request, station_id, evse_id)
        if isinstance(got, Response):
            return got
        c, account, form = got
        t = c.texts
        try:
            amount = Decimal(form.get("amount", ""))
        except InvalidOperation:
            amount = Decimal(0)
        if (
            not amount.is_finite()
            or not Decimal(1) <= amount <= MAX_TOP_UP
            or amount != amount.quantize(Decimal("0.01"))
        ):
            return await charger_page(
                site, request, station_id, evse_id, error=t.gettext("Please choose an amount to top up.")
            )
        if s.payments is None:
            return await charger_page(
                site, request, station_id, evse_id, error=t.gettext("Top-ups are not available here.")
            )
        checkout = await s.payments.create_checkout(
            account.id, Money(amount, account.currency), return_url=charger_url(station_id, evse_id)
        )
        return RedirectResponse(checkout.redirect_url, status_code=303)

    @router.get("/pay/test/{reference}")
    async def pay_page(request: Request, reference: ChargeId) -> Response:
        c = await site.visit(request)
        provider = s.test_payments
        pending = provider.pending(reference) if provider else None
        if pending is None or c.account is None or pending.account_id != c.account.id:
            return site.not_found(c)
        return site.render(
            c,
            "pay_test.html",
            reference=reference,
            amount=c.texts.money(pending.amount.amount, pending.amount.currency),
            back=pending.return_url,
        )

    @router.post("/pay/test/{reference}")
    async def pay(request: Request, reference: ChargeId) -> Response:
        got = await site.posted(request)
        if isinstance(got, Response):
            return got
        c, _ = got
        provider = s.test_payments
        pending = provider.pending(reference) if provider else None
        if provider is None or pending is None or c.account is None or pending.account_id != c.account.id:
            return site.not_found(c)
        await s.billing.wallet.credit_payment(
            PaymentEvent(provider.name, reference, pending.account_id, pending.amount)
        )
        provider.done(reference)
        return RedirectResponse(local_or(pending.return_url, "/me"), status_code=303)
