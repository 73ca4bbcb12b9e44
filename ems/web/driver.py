"""The driver pages: ``/c/{station}/{evse}`` (what the QR sticker opens), sign-in, top-up, start, follow, stop,
receipts and "My sessions".

Every form is a plain POST that answers with a redirect (works without JavaScript); the
charge page polls ``/charge/{id}/live.json`` to update itself. Start is pay-before-start
(``ems.services.charge``): the hold is committed in the ledger before RemoteStart is sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ems.domain.billing import Account, LineKind, SessionCost, User
from ems.domain.commands import CommandStatus
from ems.domain.driver import phone_key
from ems.domain.ledger import Hold
from ems.domain.live import LiveSessionView
from ems.domain.money import Money
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, Station
from ems.errors import BillingError, InsufficientFunds, InvalidInput, NotFound, StorageError
from ems.services.charge import ChargeState
from ems.services.wallet import PaymentEvent
from ems.throttle import AuthThrottle, retry_after_header, security_event
from ems.web import views
from ems.web.i18n import LANGUAGES, Texts, format_locale, negotiate
from ems.web.security import CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE, Csrf, set_cookie
from ems.web.services import WebServices, WebSettings

StationId = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:*+|@-]+$")]
EvseId = Annotated[int, Path(ge=1, le=999)]
ChargeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
TOP_UP_CHOICES = (Decimal(10), Decimal(20), Decimal(50))
MAX_TOP_UP = Decimal(500)
_SESSION_MAX_AGE_S = 30 * 86_400
_YEAR_S = 365 * 86_400


@dataclass(slots=True)
class _Ctx:
    """One request's view of the driver: language, CSRF, who is signed in."""

    request: Request
    texts: Texts
    user: User | None
    account: Account | None


class DriverPages:
    def __init__(self, settings: WebSettings, services: WebServices, throttle: AuthThrottle) -> None:
        self.settings = settings
        self.s = services
        self.throttle = throttle
        self.csrf = Csrf(settings.secret)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("ems.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    # ------------------------------------------------------------------ plumbing

    async def ctx(self, request: Request) -> _Ctx:
        accept = request.headers.get("accept-language")
        lang = negotiate(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), accept)
        user = await self.s.drivers.user_for(request.cookies.get(SESSION_COOKIE))
        account = None
        if user is not None:
            accounts = await self.s.billing.service.billing.ledger.accounts_for_user(user.id)
            account = accounts[0] if accounts else None
        return _Ctx(request, Texts(lang, format_locale(lang, accept)), user, account)

    def render(self, c: _Ctx, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        t = c.texts
        seed = self.csrf.seed(c.request)
        page = self.env.get_template(template).render(
            _=t.gettext,
            t=t,
            lang=t.lang,
            languages=LANGUAGES,
            csrf_field=CSRF_FIELD,
            csrf=self.csrf.token(seed),
            path=c.request.url.path,
            user=c.user,
            **values,
        )
        response = HTMLResponse(page, status_code=status_code)
        self.csrf.remember(c.request, response)
        chosen = c.request.query_params.get("lang")
        if chosen in LANGUAGES:
            set_cookie(c.request, response, LANG_COOKIE, chosen, _YEAR_S)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        )
        return response

    async def form(self, c: _Ctx) -> Mapping[str, str] | Response:
        """The POSTed form, or a 403 page if its CSRF token does not match this browser's cookie."""
        data = await c.request.form()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        if not self.csrf.valid(c.request, fields.get(CSRF_FIELD)):
            return self.render(
                c,
                "message.html",
                status_code=403,
                title=c.texts.gettext("This form has expired"),
                message=c.texts.gettext("Please go back, reload the page and try again."),
            )
        return fields

    async def station_view(self, station: Station, evse_id: int) -> tuple[bool, ConnectorStatusRecord | None]:
        online = self.s.control.is_online(station.id) if self.s.control is not None else False
        latest = next(
            (r for r in await self.s.stations.status_history(station.id, limit=50) if r.evse_id == evse_id), None
        )
        return online, latest

    async def timezone(self, station_id: str) -> str:
        return await self.s.billing.service.timezone_for(station_id)

    async def open_charge(
        self, account: Account, station_id: str | None = None, evse_id: int | None = None
    ) -> Hold | None:
        for hold in await self.s.billing.service.billing.ledger.open_holds():
            if hold.account_id != account.id:
                continue
            if station_id is None or (hold.station_id == station_id and hold.evse_id in (evse_id, None)):
                return hold
        return None

    async def balance(self, c: _Ctx) -> str | None:
        if c.account is None:
            return None
        b = await self.s.billing.service.billing.ledger.balance(c.account.id)
        return c.texts.money(Money.from_minor(b.available_minor, b.currency).amount, b.currency)

    # ------------------------------------------------------------------ the charger page

    async def charger(self, request: Request, station_id: str, evse_id: int, *, error: str | None = None) -> Response:
        c = await self.ctx(request)
        t = c.texts
        station = await self.s.stations.get(station_id)
        if station is None:
            return self.render(
                c,
                "message.html",
                status_code=404,
                title=t.gettext("Charger not found"),
                message=t.gettext(
                    "There is no charger {station} here. Please check the code on the sticker.", station=station_id
                ),
            )
        online, latest = await self.station_view(station, evse_id)
        state = views.charger_state(
            t, online=online, status=latest.status if latest else None, error_code=latest.error_code if latest else None
        )
        tariff = await self.s.billing.service.tariff_for(station_id, c.user.group if c.user else None)
        charge = await self.open_charge(c.account, station_id, evse_id) if c.account else None
        if charge is not None and error is None:
            return RedirectResponse(f"/charge/{charge.id}", status_code=303)
        min_hold = self.s.billing.service.policy.min_hold
        low = None
        if c.account is not None:
            b = await self.s.billing.service.billing.ledger.balance(c.account.id)
            if Money.from_minor(b.available_minor, b.currency).amount < min_hold:
                low = t.gettext(
                    "Your balance is too low to start: at least {amount} is needed. Please top up first.",
                    amount=t.money(min_hold, b.currency),
                )
        return self.render(
            c,
            "charger.html",
            station=station,
            evse_id=evse_id,
            state=state,
            prices=views.price_lines(t, tariff),
            balance=await self.balance(c),
            low_balance=low,
            error=error,
            top_ups=[(str(a), t.money(a, c.account.currency)) for a in TOP_UP_CHOICES] if c.account else [],
            payments=self.s.payments is not None,
            test_payments=self.s.test_payments is not None,
            attempt=secrets.token_urlsafe(12),
            next_url=f"/c/{quote(station_id)}/{evse_id}",
        )

    async def charger_status(self, request: Request, station_id: str, evse_id: int) -> Response:
        """The connector's state for the charger page's script (``static/driver.js``)."""
        c = await self.ctx(request)
        station = await self.s.stations.get(station_id)
        if station is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        online, latest = await self.station_view(station, evse_id)
        state = views.charger_state(
            c.texts,
            online=online,
            status=latest.status if latest else None,
            error_code=latest.error_code if latest else None,
        )
        body = {"label": state.label, "tone": state.tone, "message": state.message, "can_start": state.can_start}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def sign_in(self, request: Request, station_id: str | None, evse_id: int | None) -> Response:
        c = await self.ctx(request)
        t = c.texts
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        back = f"/c/{quote(station_id)}/{evse_id}" if station_id else "/me"
        phone, pin = form.get("phone", "").strip()[:40], form.get("pin", "").strip()[:20]
        source = request.client.host if request.client else "unknown"
        identity = f"phone:{phone_key(phone) or phone}"  # "+46 70..." and "+4670..." are one phone to throttle
        keys = (f"ip:{source}", identity)
        now = self.s.clock.monotonic()
        wait = self.throttle.retry_after(keys, now)
        if wait is not None:
            response = self.render(
                c,
                "signin_failed.html",
                status_code=429,
                back=back,
                message=t.gettext(
                    "Too many wrong PINs. Please wait {seconds} seconds and try again.",
                    seconds=retry_after_header(wait),
                ),
            )
            response.headers["Retry-After"] = retry_after_header(wait)
            return response
        signed = await self.s.drivers.sign_in(phone, pin)
        if signed is None:
            self.throttle.failed(keys, now)
            security_event("web_sign_in_failed", source=source)
            return self.render(
                c,
                "signin_failed.html",
                status_code=401,
                back=back,
                message=t.gettext("The phone number or PIN is not right. Please try again."),
            )
        self.throttle.succeeded(identity)
        redirect = RedirectResponse(back, status_code=303)
        set_cookie(request, redirect, SESSION_COOKIE, signed.token, _SESSION_MAX_AGE_S)
        return redirect

    async def sign_out(self, request: Request) -> Response:
        c = await self.ctx(request)
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        await self.s.drivers.sign_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(_local_or(form.get("next"), "/me"), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def top_up(self, request: Request, station_id: str, evse_id: int) -> Response:
        c = await self.ctx(request)
        t = c.texts
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        if c.account is None:
            return RedirectResponse(f"/c/{quote(station_id)}/{evse_id}", status_code=303)
        try:
            amount = Decimal(form.get("amount", ""))
        except InvalidOperation:
            amount = Decimal(0)
        if (
            not amount.is_finite()
            or not Decimal(1) <= amount <= MAX_TOP_UP
            or amount != amount.quantize(Decimal("0.01"))
        ):
            return await self.charger(
                request, station_id, evse_id, error=t.gettext("Please choose an amount to top up.")
            )
        if self.s.payments is None:
            return await self.charger(request, station_id, evse_id, error=t.gettext("Top-ups are not available here."))
        checkout = await self.s.payments.create_checkout(
            c.account.id, Money(amount, c.account.currency), return_url=f"/c/{quote(station_id)}/{evse_id}"
        )
        return RedirectResponse(checkout.redirect_url, status_code=303)

    async def start(self, request: Request, station_id: str, evse_id: int) -> Response:
        c = await self.ctx(request)
        t = c.texts
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        if c.account is None:
            return RedirectResponse(f"/c/{quote(station_id)}/{evse_id}", status_code=303)
        station = await self.s.stations.get(station_id)
        if station is None:
            return await self.charger(request, station_id, evse_id)
        online, latest = await self.station_view(station, evse_id)
        state = views.charger_state(
            t, online=online, status=latest.status if latest else None, error_code=latest.error_code if latest else None
        )
        if not state.can_start:
            return await self.charger(request, station_id, evse_id, error=state.message)
        attempt = form.get("attempt", "")[:64] or None
        try:
            started = await self.s.billing.charges.start(
                station_id=station_id,
                evse_id=evse_id,
                account_id=c.account.id,
                idempotency_key=f"web:{attempt}" if attempt else None,
            )
        except InsufficientFunds:
            b = await self.s.billing.service.billing.ledger.balance(c.account.id)
            need = t.money(self.s.billing.service.policy.min_hold, b.currency)
            return await self.charger(
                request,
                station_id,
                evse_id,
                error=t.gettext(
                    "Your balance is too low to start: at least {amount} is needed. Please top up first.", amount=need
                ),
            )
        except (BillingError, InvalidInput, NotFound) as exc:
            return await self.charger(
                request, station_id, evse_id, error=t.gettext("Could not start: {reason}", reason=str(exc))
            )
        if started.status is not CommandStatus.ACCEPTED:
            reason = {
                CommandStatus.OFFLINE: t.gettext("the charger is offline"),
                CommandStatus.TIMEOUT: t.gettext("the charger did not answer"),
                CommandStatus.REJECTED: t.gettext("the charger refused"),
                CommandStatus.NOT_SUPPORTED: t.gettext("the charger cannot be started remotely"),
            }.get(started.status, started.status.value)
            return await self.charger(
                request,
                station_id,
                evse_id,
                error=t.gettext("The charger did not start ({reason}). Nothing was charged.", reason=reason),
            )
        return RedirectResponse(f"/charge/{started.charge_id}", status_code=303)

    # ------------------------------------------------------------------ following a charge

    async def own_charge(self, c: _Ctx, charge_id: str) -> ChargeState | None:
        if c.account is None:
            return None
        try:
            state = await self.s.billing.charges.state(charge_id)
        except NotFound:
            return None
        return state if state.hold.account_id == c.account.id else None

    async def live(self, c: _Ctx, state: ChargeState) -> dict[str, Any]:
        t = c.texts
        hold = state.hold
        now = self.s.clock.now()
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
            latest = next(
                (
                    r
                    for r in await self.s.stations.status_history(hold.station_id, limit=50)
                    if r.evse_id == hold.evse_id
                ),
                None,
            )
            status = latest.status if latest else None
        out["label"] = views.charge_state_label(t, state.state, status)
        if state.session_id is None:
            return out
        session = await self.s.sessions.get(state.session_id)
        if session is None:
            return out
        try:
            cost = await self.s.billing.service.quote(session.id)
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
        live = self._live_session(session.id, session.station_id)
        if live is not None and live.power_w is not None:
            power_w = live.power_w
        if power_w is not None and session.stopped_at is None:
            out["power"] = t.number(power_w / 1000, 1) + " kW"
        if state.state == "charging" and live is not None and live.planned_power_w == 0 and live.limited_by:
            # The plan gives this session nothing for now (the site or a circuit is at its limit): say so.
            out["label"] = t.gettext("Waiting for power: the site is at its limit")
        if live is not None and live.energy_requested_wh and live.planned_power_w and live.planned_power_w > 0:
            remaining_wh = max(0.0, live.energy_requested_wh - live.delivered_wh)
            finish = now + timedelta(hours=remaining_wh / live.planned_power_w)
            out["finish"] = t.clock_time(finish, await self.timezone(session.station_id))
        elif live is not None and live.departure_at is not None:
            out["finish"] = t.clock_time(live.departure_at, await self.timezone(session.station_id))
        if state.state == "completed":
            out["receipt_url"] = f"/me/sessions/{session.id}"
        return out

    def _live_session(self, session_id: str, station_id: str) -> LiveSessionView | None:
        monitor = self.s.monitor
        if monitor is None:
            return None
        for site in self.s.sites:
            for view in monitor.live_sessions(site.id):
                if view.session_id == session_id:
                    return view
        return None

    async def charge_page(self, request: Request, charge_id: str, *, error: str | None = None) -> Response:
        c = await self.ctx(request)
        if c.user is None:
            return RedirectResponse("/me", status_code=303)
        state = await self.own_charge(c, charge_id)
        if state is None:
            return self.not_found(c)
        data = await self.live(c, state)
        if data["receipt_url"] and error is None:
            return RedirectResponse(data["receipt_url"], status_code=303)
        hold = state.hold
        return self.render(
            c,
            "charge.html",
            charge_id=charge_id,
            station_id=hold.station_id,
            evse_id=hold.evse_id,
            live=data,
            error=error,
            balance=await self.balance(c),
            reserved=c.texts.money(Money.from_minor(hold.amount_minor, hold.currency).amount, hold.currency),
        )

    async def charge_live(self, request: Request, charge_id: str) -> Response:
        c = await self.ctx(request)
        state = await self.own_charge(c, charge_id)
        if state is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(await self.live(c, state), headers={"Cache-Control": "no-store"})

    async def stop(self, request: Request, charge_id: str) -> Response:
        c = await self.ctx(request)
        t = c.texts
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        state = await self.own_charge(c, charge_id)
        if state is None:
            return self.not_found(c)
        result = await self.s.billing.charges.stop(charge_id)
        if not result.ok and state.state in ("pending", "charging"):
            return await self.charge_page(
                request,
                charge_id,
                error=t.gettext(
                    "The charger did not stop ({reason}). Please try again.",
                    reason=result.detail or result.status.value,
                ),
            )
        return RedirectResponse(f"/charge/{charge_id}", status_code=303)

    # ------------------------------------------------------------------ receipts and history

    async def owns_cost(self, c: _Ctx, cost: SessionCost) -> bool:
        if c.user is None:
            return False
        if c.account is not None and cost.account_id == c.account.id:
            return True
        if cost.card_uid:
            card = await self.s.cards.get(cost.card_uid)
            return card is not None and card.user_id == c.user.id
        return False

    async def receipt(self, request: Request, session_id: str) -> Response:
        c = await self.ctx(request)
        t = c.texts
        if c.user is None:
            return RedirectResponse("/me", status_code=303)
        cost = await self.s.billing.service.billing.costs.get(session_id)
        if cost is None:
            hold = await self.s.billing.service.billing.ledger.hold_for_session(session_id)
            if hold is not None and c.account is not None and hold.account_id == c.account.id:
                return self.render(
                    c,
                    "message.html",
                    title=t.gettext("Your receipt is being prepared"),
                    message=t.gettext("The charger has stopped; the receipt appears here in a moment."),
                    refresh_s=2,
                )
            return self.not_found(c)
        if not await self.owns_cost(c, cost):
            return self.not_found(c)
        tz = await self.timezone(cost.station_id)
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
        return self.render(
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
            balance=await self.balance(c),
        )

    async def my_sessions(self, request: Request) -> Response:
        c = await self.ctx(request)
        t = c.texts
        if c.user is None:
            return self.render(c, "signin_page.html", back="/me")
        costs: dict[str, SessionCost] = {}
        if c.account is not None:
            for cost in await self.s.billing.service.billing.costs.query(account_id=c.account.id, limit=200):
                costs[cost.session_id] = cost
        card_rows = []
        for card in await self.s.cards.all():
            if card.user_id != c.user.id:
                continue
            spent = await self.s.billing.service.billing.costs.query(card_uid=card.uid, limit=200)
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
            tz = await self.timezone(cost.station_id)
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
        open_charge = await self.open_charge(c.account) if c.account else None
        return self.render(
            c, "sessions.html", rows=rows, cards=card_rows, balance=await self.balance(c), open_charge=open_charge
        )

    def not_found(self, c: _Ctx) -> HTMLResponse:
        return self.render(
            c,
            "message.html",
            status_code=404,
            title=c.texts.gettext("Not found"),
            message=c.texts.gettext("This page does not exist, or it belongs to another driver."),
        )

    # ------------------------------------------------------------------ the test payment provider

    async def test_payment_page(self, request: Request, reference: str) -> Response:
        c = await self.ctx(request)
        provider = self.s.test_payments
        pending = provider.pending(reference) if provider else None
        if pending is None or c.account is None or pending.account_id != c.account.id:
            return self.not_found(c)
        return self.render(
            c,
            "pay_test.html",
            reference=reference,
            amount=c.texts.money(pending.amount.amount, pending.amount.currency),
            back=pending.return_url,
        )

    async def test_payment_pay(self, request: Request, reference: str) -> Response:
        c = await self.ctx(request)
        form = await self.form(c)
        if isinstance(form, Response):
            return form
        provider = self.s.test_payments
        pending = provider.pending(reference) if provider else None
        if provider is None or pending is None or c.account is None or pending.account_id != c.account.id:
            return self.not_found(c)
        await self.s.billing.wallet.credit_payment(
            PaymentEvent(provider.name, reference, pending.account_id, pending.amount)
        )
        provider.done(reference)
        return RedirectResponse(_local_or(pending.return_url, "/me"), status_code=303)


def _local_or(url: str | None, default: str) -> str:
    """``url`` if it is a path on this site, else ``default`` (no open redirect)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default
