"""Starting a charge (pay before start), following it live, and stopping it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ems.domain.commands import CommandStatus
from ems.domain.live import LiveSessionView
from ems.domain.money import Money
from ems.domain.station import ConnectorStatus
from ems.errors import BillingError, InsufficientFunds, InvalidInput, NotFound, StorageError
from ems.services.charge import ChargeState
from ems.web import views
from ems.web.context import ChargeId, DriverSite, EvseId, StationId, Visit, low_balance
from ems.web.pages.charger import charger_page


async def own_charge(site: DriverSite, c: Visit, charge_id: str) -> ChargeState | None:
    """The charge, if the signed-in driver's account holds it."""
    if c.account is None:
        return None
    try:
        state = await site.s.billing.charges.state(charge_id)
    except NotFound:
        return None
    return state if state.hold.account_id == c.account.id else None


def live_session(site: DriverSite, session_id: str) -> LiveSessionView | None:
    """The controller's live view of the session (its draw and plan), if a monitor is handed in."""
    monitor = site.s.monitor
    if monitor is None:
        return None
    for s in site.s.sites:
        for view in monitor.live_sessions(s.id):
            if view.session_id == session_id:
                return view
    return None


async def live(site: DriverSite, c: Visit, state: ChargeState) -> dict[str, Any]:
    """The charge as the page and ``live.json`` show it: state, energy, power, cost, time, expected finish."""
    s = site.s
    t = c.texts
    hold = state.hold
    now = s.clock.now()
    out: dict[str, Any] = {
        "state": state.state,
        "done": state.state in ("completed", "cancelled"),
        "energy_wh": 0.0,
        "energy": t.number(0, 2) + " kWh",
        "power": "-",
        "cost": t.money(Decimal(0), hold.currency),
        "elapsed": views.duration(t, views.elapsed_s(hold.created_at, now)),
        "finish": None,
        "receipt_url": None,
    }
    status: ConnectorStatus | None = None
    if hold.station_id is not None and hold.evse_id is not None:
        latest = await site.latest_status(hold.station_id, hold.evse_id)
        status = latest.status if latest else None
    out["label"] = views.charge_state_label(t, state.state, status)
    if state.session_id is None:
        return out
    session = await s.sessions.get(state.session_id)
    if session is None:
        return out
    try:
        cost = await s.billing.service.quote(session.id)
    except (BillingError, NotFound, StorageError):
        cost = None
    energy_wh = float(cost.cdr.energy_wh) if cost else session.energy_wh
    out["energy_wh"] = energy_wh
    out["energy"] = t.number(energy_wh / 1000, 2) + " kWh"
    if cost is not None:
        out["cost"] = t.money(cost.cdr.total.amount, cost.cdr.currency)
    end = session.stopped_at or now
    out["elapsed"] = views.duration(t, views.elapsed_s(session.started_at, end))
    power_w = session.last_power_w
    seen = live_session(site, session.id)
    if seen is not None and seen.power_w is not None:
        power_w = seen.power_w
    if power_w is not None and session.stopped_at is None:
        out["power"] = t.number(power_w / 1000, 1) + " kW"
    if state.state == "charging" and seen is not None and seen.planned_power_w == 0 and seen.limited_by:
        # The plan gives this session nothing for now (the site or a circuit is at its limit): say so.
        out["label"] = t.gettext("Waiting for power: the site is at its limit")
    if seen is not None and seen.energy_requested_wh and seen.planned_power_w and seen.planned_power_w > 0:
        remaining_wh = max(0.0, seen.energy_requested_wh - seen.delivered_wh)
        finish = now + timedelta(hours=remaining_wh / seen.planned_power_w)
        out["finish"] = t.clock_time(finish, await site.timezone(session.station_id))
    elif seen is not None and seen.departure_at is not None:
        out["finish"] = t.clock_time(seen.departure_at, await site.timezone(session.station_id))
    if state.state == "completed":
        out["receipt_url"] = f"/me/sessions/{session.id}"
    return out


async def charge_page(site: DriverSite, request: Request, charge_id: str, *, error: str | None = None) -> Response:
    c = await site.visit(request)
    if c.user is None:
        return RedirectResponse("/me", status_code=303)
    state = await own_charge(site, c, charge_id)
    if state is None:
        return site.not_found(c)
    data = await live(site, c, state)
    if data["receipt_url"] and error is None:
        return RedirectResponse(data["receipt_url"], status_code=303)
    hold = state.hold
    return site.render(
        c,
        "charge.html",
        charge_id=charge_id,
        station_id=hold.station_id,
        evse_id=hold.evse_id,
        live=data,
        error=error,
        balance=await site.balance(c),
        reserved=c.texts.money(Money.from_minor(hold.amount_minor, hold.currency).amount, hold.currency),
    )


def register(router: APIRouter, site: DriverSite) -> None:
    s = site.s

    @router.post("/c/{station_id}/{evse_id}/start")
    async def start(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        got = await site.posted_at_charger(request, station_id, evse_id)
        if isinstance(got, Response):
            return got
        c, account, form = got
        t = c.texts
        station = await s.stations.get(station_id)
        if station is None:
            return await charger_page(site, request, station_id, evse_id)
        state = await site.charger_state(t, station, evse_id)
        if not state.can_start:
            return await charger_page(site, request, station_id, evse_id, error=state.message)
        attempt = form.get("attempt", "")[:64] or None
        try:
            started = await s.billing.charges.start(
                station_id=station_id,
                evse_id=evse_id,
                account_id=account.id,
                idempotency_key=f"web:{attempt}" if attempt else None,
            )
        except InsufficientFunds:
            b = await s.billing.service.billing.ledger.balance(account.id)
            need = t.money(s.billing.service.policy.min_hold, b.currency)
            return await charger_page(site, request, station_id, evse_id, error=low_balance(t, need))
        except (BillingError, InvalidInput, NotFound) as exc:
            return await charger_page(
                site, request, station_id, evse_id, error=t.gettext("Could not start: {reason}", reason=str(exc))
            )
        if started.status is not CommandStatus.ACCEPTED:
            reason = {
                CommandStatus.OFFLINE: t.gettext("the charger is offline"),
                CommandStatus.TIMEOUT: t.gettext("the charger did not answer"),
                CommandStatus.REJECTED: t.gettext("the charger refused"),
                CommandStatus.NOT_SUPPORTED: t.gettext("the charger cannot be started remotely"),
            }.get(started.status, started.status.value)
            return await charger_page(
                site,
                request,
                station_id,
                evse_id,
                error=t.gettext("The charger did not start ({reason}). Nothing was charged.", reason=reason),
            )
        return RedirectResponse(f"/charge/{started.charge_id}", status_code=303)

    @router.get("/charge/{charge_id}")
    async def charge(request: Request, charge_id: ChargeId) -> Response:
        return await charge_page(site, request, charge_id)

    @router.get("/charge/{charge_id}/live.json")
    async def charge_live(request: Request, charge_id: ChargeId) -> Response:
        c = await site.visit(request)
        state = await own_charge(site, c, charge_id)
        if state is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(await live(site, c, state), headers={"Cache-Control": "no-store"})

    @router.post("/charge/{charge_id}/stop")
    async def stop(request: Request, charge_id: ChargeId) -> Response:
        got = await site.posted(request)
        if isinstance(got, Response):
            return got
        c, _ = got
        t = c.texts
        state = await own_charge(site, c, charge_id)
        if state is None:
            return site.not_found(c)
        result = await s.billing.charges.stop(charge_id)
        if not result.ok and state.state in ("pending", "charging"):
            return await charge_page(
                site,
                request,
                charge_id,
                error=t.gettext(
                    "The charger did not stop ({reason}). Please try again.",
                    reason=result.detail or result.status.value,
                ),
            )
        return RedirectResponse(f"/charge/{charge_id}", status_code=303)
