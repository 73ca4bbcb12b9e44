"""The charger page (what the QR sticker opens): its state, prices, the driver's balance; and its status for
the page's script."""

from __future__ import annotations

import secrets
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ems.domain.money import Money
from ems.web import views
from ems.web.context import DriverSite, EvseId, StationId, charger_url, low_balance

TOP_UP_CHOICES = (Decimal(10), Decimal(20), Decimal(50))


async def charger_page(
    site: DriverSite, request: Request, station_id: str, evse_id: int, *, error: str | None = None
) -> Response:
    """The charger page, with ``error`` when an action from it failed (then no redirect to a running charge)."""
    s = site.s
    c = await site.visit(request)
    t = c.texts
    station = await s.stations.get(station_id)
    if station is None:
        return site.render(
            c,
            "message.html",
            status_code=404,
            title=t.gettext("Charger not found"),
            message=t.gettext(
                "There is no charger {station} here. Please check the code on the sticker.", station=station_id
            ),
        )
    state = await site.charger_state(t, station, evse_id)
    tariff = await s.billing.service.tariff_for(station_id, c.user.group if c.user else None)
    charge = await site.open_charge(c.account, station_id, evse_id) if c.account else None
    if charge is not None and error is None:
        return RedirectResponse(f"/charge/{charge.id}", status_code=303)
    min_hold = s.billing.service.policy.min_hold
    low = None
    if c.account is not None:
        b = await s.billing.service.billing.ledger.balance(c.account.id)
        if Money.from_minor(b.available_minor, b.currency).amount < min_hold:
            low = low_balance(t, t.money(min_hold, b.currency))
    return site.render(
        c,
        "charger.html",
        station=station,
        evse_id=evse_id,
        state=state,
        prices=views.price_lines(t, tariff),
        balance=await site.balance(c),
        low_balance=low,
        error=error,
        top_ups=[(str(a), t.money(a, c.account.currency)) for a in TOP_UP_CHOICES] if c.account else [],
        payments=s.payments is not None,
        test_payments=s.test_payments is not None,
        attempt=secrets.token_urlsafe(12),
        next_url=charger_url(station_id, evse_id),
    )


def register(router: APIRouter, site: DriverSite) -> None:
    @router.get("/c/{station_id}/{evse_id}")
    async def charger(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await charger_page(site, request, station_id, evse_id)

    @router.get("/c/{station_id}/{evse_id}/status.json")
    async def charger_status(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        """The connector's state for the charger page's script (``static/driver.js``)."""
        c = await site.visit(request)
        station = await site.s.stations.get(station_id)
        if station is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        state = await site.charger_state(c.texts, station, evse_id)
        body = {"label": state.label, "tone": state.tone, "message": state.message, "can_start": state.can_start}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
