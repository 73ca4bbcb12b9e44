"""What every driver page shares: the request's language and signed-in driver (``Visit``), the
templates and their security headers, the CSRF check of a form, and the look-ups several pages make.

The pages themselves are the modules of ``ems.web.pages``; ``ems.web.routes`` adds them to one router.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ems.domain.billing import Account, User
from ems.domain.ledger import Hold
from ems.domain.money import Money
from ems.domain.station import ConnectorStatusRecord, Station
from ems.throttle import AuthThrottle
from ems.web import views
from ems.web.i18n import LANGUAGES, Texts, format_locale, negotiate
from ems.web.security import CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE, Csrf, set_cookie
from ems.web.services import WebServices, WebSettings

StationId = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:*+|@-]+$")]
EvseId = Annotated[int, Path(ge=1, le=999)]
ChargeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_YEAR_S = 365 * 86_400


@dataclass(slots=True)
class Visit:
    """One request's view of the driver: language, CSRF, who is signed in."""

    request: Request
    texts: Texts
    user: User | None
    account: Account | None


def local_or(url: str | None, default: str) -> str:
    """``url`` if it is a path on this site, else ``default`` (no open redirect)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


def charger_url(station_id: str, evse_id: int) -> str:
    """The charger page's path (the station id URL-escaped)."""
    return f"/c/{quote(station_id)}/{evse_id}"


def low_balance(t: Texts, amount: str) -> str:
    return t.gettext(
        "Your balance is too low to start: at least {amount} is needed. Please top up first.", amount=amount
    )


class DriverSite:
    """The driver pages' shared plumbing, over the services handed in by the composition root."""

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

    # ------------------------------------------------------------------ requests and answers

    async def visit(self, request: Request) -> Visit:
        accept = request.headers.get("accept-language")
        lang = negotiate(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), accept)
        user = await self.s.drivers.user_for(request.cookies.get(SESSION_COOKIE))
        account = None
        if user is not None:
            accounts = await self.s.billing.service.billing.ledger.accounts_for_user(user.id)
            account = accounts[0] if accounts else None
        return Visit(request, Texts(lang, format_locale(lang, accept)), user, account)

    def render(self, c: Visit, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
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

    async def form(self, c: Visit) -> Mapping[str, str] | Response:
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

    async def posted(self, request: Request) -> tuple[Visit, Mapping[str, str]] | Response:
        """The visit and its POSTed form, or the 403 page when the form's CSRF token does not match."""
        c = await self.visit(request)
        form = await self.form(c)
        return form if isinstance(form, Response) else (c, form)

    async def posted_at_charger(
        self, request: Request, station_id: str, evse_id: int
    ) -> tuple[Visit, Account, Mapping[str, str]] | Response:
        """As ``posted``, for a form of the charger page that needs the driver's account: without one, back
        to the charger page."""
        got = await self.posted(request)
        if isinstance(got, Response):
            return got
        c, form = got
        if c.account is None:
            return RedirectResponse(charger_url(station_id, evse_id), status_code=303)
        return c, c.account, form

    def not_found(self, c: Visit) -> HTMLResponse:
        return self.render(
            c,
            "message.html",
            status_code=404,
            title=c.texts.gettext("Not found"),
            message=c.texts.gettext("This page does not exist, or it belongs to another driver."),
        )

    # ------------------------------------------------------------------ look-ups

    async def latest_status(self, station_id: str, evse_id: int) -> ConnectorStatusRecord | None:
        """The EVSE's newest status record (among the station's last 50)."""
        return next(
            (r for r in await self.s.stations.status_history(station_id, limit=50) if r.evse_id == evse_id), None
        )

    async def charger_state(self, t: Texts, station: Station, evse_id: int) -> views.ChargerState:
        """What the charger page says of the EVSE: online, its status and error, in words."""
        online = self.s.control.is_online(station.id) if self.s.control is not None else False
        latest = await self.latest_status(station.id, evse_id)
        return views.charger_state(
            t, online=online, status=latest.status if latest else None, error_code=latest.error_code if latest else None
        )

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

    async def balance(self, c: Visit) -> str | None:
        if c.account is None:
            return None
        b = await self.s.billing.service.billing.ledger.balance(c.account.id)
        return c.texts.money(Money.from_minor(b.available_minor, b.currency).amount, b.currency)
