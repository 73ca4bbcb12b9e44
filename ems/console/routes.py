"""``build_console(deps)``: the console's pages as one ``APIRouter`` under ``/console``.

Every page needs the analyst role at least (read-only); edits and station commands need operator.
Forms post back to their page, which shows the outcome or, field by field, what was wrong.
"""

from __future__ import annotations

import inspect
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ems.console import charts
from ems.console.auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_S, Sessions, Viewer, same
from ems.console.deps import ConsoleDeps
from ems.console.load import load_history
from ems.domain.access import Role
from ems.domain.card import Card, CardMode, CardStatus
from ems.domain.commands import (
    Availability,
    ChangeAvailability,
    CommandResult,
    CommandStatus,
    RemoteStart,
    RemoteStop,
    Reset,
    ResetKind,
    StationCommand,
    UnlockConnector,
)
from ems.domain.ledger import Book, MovementKind
from ems.domain.money import CurrencyError, Money, check_currency, parse_decimal
from ems.domain.station import ConnectorStatusRecord, Station
from ems.domain.tariff import tariff_problems
from ems.domain.units import ALL_PHASES
from ems.errors import Conflict, InvalidInput, NotFound
from ems.security import hash_api_key
from ems.services.admin import register_card
from ems.services.operators import check_api_key, check_sign_in, normalize_email
from ems.throttle import AuthThrottle, retry_after_header, security_event

PREFIX = "/console"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # Own scripts and styles only (inline style attributes for chart legends); never inside a frame.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
CARD_UID = re.compile(r"^[A-Za-z0-9._:-]{1,36}$")
"""OCPP 2.0.1 IdToken: at most 36 characters (as the API's card routes)."""
PHASE_COLORS = {"L1": "#b3261e", "L2": "#1a5fb4", "L3": "#26803a"}
PHASE_WIDTHS = {"L1": 7.0, "L2": 4.5, "L3": 2.0}
"""Balanced phases draw on top of each other: nested widths keep all three visible."""
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
NO_ERROR = {None, "", "NoError"}

Handler = Callable[..., Awaitable[Response]]


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("ems.console", "templates"), autoescape=select_autoescape(["html"]))
    env.globals["prefix"] = PREFIX
    return env


def field_errors(problems: list[str]) -> dict[str, str]:
    """``"name: message"`` problems as {field: message}; a problem naming no field goes under ``_form``."""
    out: dict[str, str] = {}
    for problem in problems:
        name, sep, message = problem.partition(":")
        key = name.strip() if sep and " " not in name.strip() else "_form"
        text = message.strip() if key != "_form" else problem
        out[key] = f"{out[key]}; {text}" if key in out else text
    return out


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers or {}


def build_console(deps: ConsoleDeps) -> APIRouter:
    """The console's router (include it in the application, e.g. ``app.include_router(...)``)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    env = _environment()
    sessions = Sessions()
    throttle = AuthThrottle(deps.throttle)
    clock = deps.clock
    storage = deps.storage
    billing = deps.billing

    # ------------------------------------------------------------------ helpers

    def zone_of(site_id: str | None = None) -> ZoneInfo:
        site = deps.site(site_id) or deps.sites[0]
        return ZoneInfo(site.timezone)

    def local(t: datetime | None, site_id: str | None = None) -> str:
        if t is None:
            return "never"
        return t.astimezone(zone_of(site_id)).strftime("%Y-%m-%d %H:%M %Z")

    def ago(t: datetime | None) -> str:
        if t is None:
            return ""
        s = max(0.0, (clock.now() - t).total_seconds())
        if s < 90:
            return f"{s:.0f} s ago"
        if s < 5400:
            return f"{s / 60:.0f} min ago"
        if s < 172_800:
            return f"{s / 3600:.1f} h ago"
        return f"{s / 86400:.0f} days ago"

    env.globals.update(local=local, ago=ago)

    def page(request: Request, template: str, viewer: Viewer, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = env.get_template(template).render(request=request, viewer=viewer, path=request.url.path, **ctx)
        return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)

    def source(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    async def who(request: Request) -> Viewer:
        """The viewer, or ``_Redirect`` to sign-in (browser) / ``_Refused`` (API key)."""
        auth = request.headers.get("authorization")
        if auth:
            scheme, _, key = auth.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise _Refused(401, "send Authorization: Bearer <API key>")
            key = key.strip()
            keys = (f"ip:{source(request)}", f"key:{hash_api_key(key)[:16]}")
            now_s = clock.monotonic()
            wait = throttle.retry_after(keys, now_s)
            if wait is not None:
                raise _Refused(429, "too many failed attempts; retry later", {"Retry-After": retry_after_header(wait)})
            checked = await check_api_key(storage.api_keys, clock, key, admin_key=deps.admin_api_key)
            if checked.role is None:
                throttle.failed(keys, now_s)
                security_event("console_key_failed", source=source(request), reason=checked.refused)
                raise _Refused(401, "unknown, revoked or expired API key")
            throttle.succeeded(keys[1])
            return Viewer(name=f"API key {checked.key_id}", role=checked.role, csrf=None)
        viewer = sessions.get(request.cookies.get(SESSION_COOKIE), clock.monotonic())
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _Redirect(f"{PREFIX}/sign-in?next={quote(target, safe='')}")
        return viewer

    def need(viewer: Viewer, role: Role) -> None:
        if not viewer.at_least(role):
            raise _Refused(403, f"this needs the {role.value} role; you have {viewer.role.value}")

    async def posted(request: Request, viewer: Viewer) -> dict[str, str]:
        """The form's fields, after the CSRF check (API-key requests carry none)."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if viewer.csrf is not None and not same(fields.get("csrf"), viewer.csrf):
            security_event("console_csrf_refused", source=source(request), path=request.url.path)
            raise _Refused(403, "the form has expired or did not come from this console: reload the page and retry")
        need(viewer, Role.OPERATOR)
        return fields

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request, **kwargs: Any) -> Response:
            try:
                viewer = await who(request)
                need(viewer, Role.ANALYST)
                return await handler(request, viewer, **kwargs)
            except _Redirect as r:
                return RedirectResponse(r.url, status_code=303)
            except _Refused as r:
                html = env.get_template("refused.html").render(status=r.status, message=r.message, viewer=None)
                return HTMLResponse(html, status_code=r.status, headers={**PAGE_HEADERS, **r.headers})
            except NotFound as e:
                html = env.get_template("refused.html").render(status=404, message=str(e), viewer=None)
                return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)

        run.__name__ = handler.__name__
        signature = inspect.signature(handler)
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for name, p in signature.parameters.items() if name != "viewer"]
        )
        return run

    def get(path: str) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            wrapped = guarded(handler)
            router.add_api_route(path, wrapped, methods=["GET"], response_class=HTMLResponse)
            return handler

        return deco

    def post(path: str) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            wrapped = guarded(handler)
            router.add_api_route(path, wrapped, methods=["POST"], response_class=HTMLResponse)
            return handler

        return deco

    # ------------------------------------------------------------------ sign-in

    @router.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_form(request: Request, next: str = PREFIX) -> HTMLResponse:
        return _sign_in_page(request, next, {}, "")

    def _sign_in_page(
        request: Request, target: str, errors: dict[str, str], email: str, status: int = 200
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        body = env.get_template("sign_in.html").render(
            viewer=None, csrf=token, next=_safe_next(target), errors=errors, email=email, path=request.url.path
        )
        response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path=PREFIX
        )
        return response

    @router.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        email, password = fields.get("email", "").strip(), fields.get("password", "")
        target = fields.get("next", PREFIX)
        if not same(fields.get("csrf"), request.cookies.get(CSRF_COOKIE)):
            return _sign_in_page(request, target, {"_form": "The form expired: please sign in again."}, email, 403)
        errors: dict[str, str] = {}
        if not email:
            errors["email"] = "Enter your email address."
        if not password:
            errors["password"] = "Enter your password."
        if errors:
            return _sign_in_page(request, target, errors, email, 422)
        keys = (f"ip:{source(request)}", f"operator:{normalize_email(email)}")
        now_s = clock.monotonic()
        wait = throttle.retry_after(keys, now_s)
        if wait is not None:
            security_event("console_sign_in_throttled", source=source(request), retry_after_s=round(wait, 1))
            response = _sign_in_page(
                request,
                target,
                {"_form": f"Too many failed sign-ins. Try again in {retry_after_header(wait)} s."},
                email,
                429,
            )
            response.headers["Retry-After"] = retry_after_header(wait)
            return response
        account = await check_sign_in(storage.operators, email, password)
        if account is None:
            lockout = throttle.failed(keys, now_s)
            security_event("console_sign_in_failed", source=source(request), lockout_s=round(lockout, 1))
            return _sign_in_page(request, target, {"_form": "Wrong email or password."}, email, 401)
        throttle.succeeded(keys[1])
        viewer = sessions.open(account.email, account.role, now_s)
        redirect = RedirectResponse(_safe_next(target), status_code=303)
        assert viewer.token is not None
        redirect.set_cookie(
            SESSION_COOKIE,
            viewer.token,
            max_age=int(SESSION_TTL_S),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
        redirect.delete_cookie(CSRF_COOKIE, path=PREFIX)
        return redirect

    @post("/sign-out")
    async def sign_out(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        if viewer.csrf is not None and not same(str(form.get("csrf", "")), viewer.csrf):
            raise _Refused(403, "the form has expired: reload the page and retry")
        sessions.close(viewer.token)
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", status_code=404)
        text = resources.files("ems.console").joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})

    # ------------------------------------------------------------------ stations

    @get("")
    async def home(request: Request, viewer: Viewer) -> Response:
        return RedirectResponse(f"{PREFIX}/stations", status_code=303)

    async def connectors(station: Station) -> list[ConnectorStatusRecord]:
        """The latest status of each connector (newest record per EVSE and connector)."""
        latest: dict[tuple[int, int], ConnectorStatusRecord] = {}
        for record in await storage.stations.status_history(station.id, limit=200):
            latest.setdefault((record.evse_id, record.connector_id), record)
        return [latest[k] for k in sorted(latest) if k[0] != 0 or len(latest) == 1]

    def evse_rows(station: Station, records: list[ConnectorStatusRecord]) -> list[dict[str, Any]]:
        site = deps.site_of_station(station.id, station.site_id)
        spec = site.station(station.id)
        limits = {}
        draws: dict[int, float | None] = {}
        if deps.monitor is not None:
            limits = {e.evse_id: e for e in deps.monitor.evse_limits(site.id) if e.station_id == station.id}
            draws = {s.evse_id: s.power_w for s in deps.monitor.live_sessions(site.id) if s.station_id == station.id}
        evse_ids = sorted(
            {r.evse_id for r in records if r.evse_id > 0}
            | set(limits)
            | ({e.evse_id for e in spec.evses} if spec else set())
        )
        rows = []
        for evse_id in evse_ids:
            here = [r for r in records if r.evse_id == evse_id]
            limit = limits.get(evse_id)
            rows.append(
                {
                    "evse_id": evse_id,
                    "connectors": here,
                    "faults": [r for r in here if r.error_code not in NO_ERROR or r.status.value == "Faulted"],
                    "draw_w": draws.get(evse_id),
                    "limit_w": None if limit is None else limit.accepted_power_w,
                    "limit_a": None if limit is None else limit.accepted_current_a,
                    "limit_certain": True if limit is None else limit.certain,
                    "transaction_id": None if limit is None else limit.transaction_id,
                }
            )
        return rows

    @get("/stations")
    async def stations_page(request: Request, viewer: Viewer) -> Response:
        rows = []
        for station in await storage.stations.all():
            records = await connectors(station)
            rows.append(
                {
                    "station": station,
                    "evses": evse_rows(station, records),
                    "station_faults": [r for r in records if r.evse_id == 0 and r.error_code not in NO_ERROR],
                }
            )
        return page(request, "stations.html", viewer, rows=rows, title="Stations", refresh=True)

    async def station_page(
        request: Request,
        viewer: Viewer,
        station_id: str,
        result: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        station = await storage.stations.get(station_id)
        if station is None:
            raise NotFound(f"no station {station_id!r}")
        records = await connectors(station)
        history = await storage.stations.status_history(station.id, limit=20)
        active = await storage.sessions.query(station_id=station.id, active_only=True, limit=20)
        online = deps.charger_control.is_online(station.id) if deps.charger_control else station.online
        return page(
            request,
            "station.html",
            viewer,
            status=status,
            station=station,
            online=online,
            evses=evse_rows(station, records),
            history=history,
            active=active,
            result=result,
            errors=errors or {},
            title=f"Station {station.id}",
            site_id=deps.site_of_station(station.id, station.site_id).id,
        )

    @get("/stations/{station_id}")
    async def station_view(request: Request, viewer: Viewer, station_id: str) -> Response:
        return await station_page(request, viewer, station_id)

    @post("/stations/{station_id}/commands")
    async def station_command(request: Request, viewer: Viewer, station_id: str) -> Response:
        fields = await posted(request, viewer)
        if await storage.stations.get(station_id) is None:
            raise NotFound(f"no station {station_id!r}")
        try:
            command = _command(fields)
        except InvalidInput as exc:
            return await station_page(request, viewer, station_id, errors=field_errors(exc.problems), status=422)
        if deps.charger_control is None:
            outcome = CommandResult(CommandStatus.OFFLINE, "no OCPP server runs in this process")
        else:
            outcome = await deps.charger_control.execute(station_id, command)
        security_event("console_command", who=viewer.name, station=station_id, command=command.name)
        result = {
            "command": command.name,
            "status": outcome.status.value,
            "detail": outcome.detail,
            "data": dict(outcome.data),
            "ok": outcome.ok,
        }
        return await station_page(request, viewer, station_id, result=result)

    # ------------------------------------------------------------------ load

    @get("/load")
    async def load_page(request: Request, viewer: Viewer, site: str | None = None) -> Response:
        chosen = deps.site(site) or deps.sites[0]
        now = clock.now()
        hist = await load_history(chosen, now, storage.samples, storage.signals, deps.capacity, deps.monitor)
        stop: tuple[datetime, float | None] = (hist.now, None)  # measured lines end now
        phase_series = [
            charts.Series(
                f"{p} measured",
                [*zip(hist.times, hist.phase_current_a[p], strict=True), stop],
                PHASE_COLORS[p],
                width=PHASE_WIDTHS[p],
            )
            for p in ALL_PHASES
        ]
        limits = [hist.phase_limit_a[p] for p in ALL_PHASES]
        if all(a == limits[0] for a in limits):
            phase_series.append(charts.Series("limit per phase", limits[0], "#6b3fa0", dashed=True))
        else:
            phase_series += [
                charts.Series(f"{p} limit", hist.phase_limit_a[p], PHASE_COLORS[p], dashed=True) for p in ALL_PHASES
            ]
        current_chart = charts.render(
            charts.Chart(
                "Current per phase: measured and limit in force",
                "A",
                hist.start,
                hist.end,
                chosen.timezone,
                phase_series,
                now=now,
            )
        )
        power_chart = charts.render(
            charts.Chart(
                "Site power: measured, planned and capacity in force",
                "kW",
                hist.start,
                hist.end,
                chosen.timezone,
                [
                    charts.Series(
                        "measured",
                        [*((t, w / 1000) for t, w in zip(hist.times, hist.power_w, strict=True)), stop],
                        "#1a5fb4",
                    ),
                    charts.Series(
                        "plan ahead",
                        [(t, None if w is None else w / 1000) for t, w in hist.plan_w],
                        "#26803a",
                        dashed=True,
                        width=4.5,
                    ),
                    charts.Series(
                        "capacity",
                        [(t, None if w is None else w / 1000) for t, w in hist.capacity_w],
                        "#b3261e",
                        dashed=True,
                    ),
                ],
                now=now,
            )
        )
        plan = deps.monitor.plan(chosen.id) if deps.monitor else None
        load = deps.monitor.site_load(chosen.id) if deps.monitor else None
        in_force = deps.capacity.in_force(chosen.id) if deps.capacity else None
        return page(
            request,
            "load.html",
            viewer,
            site=chosen,
            sites=deps.sites,
            current_chart=current_chart,
            power_chart=power_chart,
            plan=plan,
            load=load,
            in_force=in_force,
            title="Site load",
            refresh=True,
            plan_age=None if plan is None or plan.attempted_at is None else ago(plan.attempted_at),
        )

    # ------------------------------------------------------------------ sessions

    @get("/sessions")
    async def sessions_page(
        request: Request, viewer: Viewer, station: str = "", user: str = "", card: str = "", day: str = ""
    ) -> Response:
        errors: dict[str, str] = {}
        since = until = None
        if day:
            try:
                d = date.fromisoformat(day)
                zone = zone_of()
                since = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)
                until = since + timedelta(days=1)
            except ValueError:
                errors["day"] = "A day as YYYY-MM-DD."
        tags: set[str] | None = None
        if user:
            tags = {c.uid for c in await storage.cards.all() if c.user_id == user}
        found = await storage.sessions.query(station_id=station or None, since=since, until=until, limit=500)
        shown = [
            s
            for s in found
            if (not card or s.id_tag == card) and (tags is None or (s.id_tag is not None and s.id_tag in tags))
        ][:200]
        costs = {s.id: await billing.service.billing.costs.get(s.id) for s in shown}
        return page(
            request,
            "sessions.html",
            viewer,
            sessions=shown,
            costs=costs,
            errors=errors,
            title="Sessions",
            filters={"station": station, "user": user, "card": card, "day": day},
            stations=[s.id for s in await storage.stations.all()],
            users=await billing.service.billing.users.all(limit=1000),
        )

    # ------------------------------------------------------------------ users and top-ups

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
        for u in await billing.service.billing.users.all(limit=1000):
            accounts = await billing.service.billing.ledger.accounts_for_user(u.id)
            balance = await billing.service.billing.ledger.balance(accounts[0].id) if accounts else None
            rows.append(
                {
                    "user": u,
                    "account": accounts[0] if accounts else None,
                    "balance": None
                    if balance is None
                    else Money.from_minor(balance.available_minor, balance.currency).as_str(),
                }
            )
        return page(
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

    @get("/users")
    async def users_view(request: Request, viewer: Viewer) -> Response:
        return await users_page(request, viewer)

    @post("/users")
    async def create_user(request: Request, viewer: Viewer) -> Response:
        fields = await posted(request, viewer)
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
        if not errors:
            try:
                user, _ = await billing.wallet.create_user(
                    name,
                    currency=currency,
                    phone=fields.get("phone", "").strip() or None,
                    email=email,
                    group=fields.get("group", "").strip() or None,
                )
            except InvalidInput as exc:
                errors = field_errors(exc.problems)
            else:
                return await users_page(request, viewer, notice=f"User {user.name} created.")
        return await users_page(request, viewer, errors=errors, values=fields, status=422)

    async def user_page(
        request: Request,
        viewer: Viewer,
        user_id: str,
        *,
        errors: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        user = await billing.service.billing.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        accounts = await billing.service.billing.ledger.accounts_for_user(user.id)
        account = accounts[0] if accounts else None
        balance = statement = None
        if account is not None:
            b = await billing.service.billing.ledger.balance(account.id)
            balance = Money.from_minor(b.available_minor, b.currency).as_str()
            statement = await billing.service.billing.ledger.statement(account.id, limit=50)
        cards = [c for c in await storage.cards.all() if c.user_id == user.id]
        return page(
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

    @get("/users/{user_id}")
    async def user_view(request: Request, viewer: Viewer, user_id: str) -> Response:
        return await user_page(request, viewer, user_id)

    @post("/users/{user_id}/top-up")
    async def top_up(request: Request, viewer: Viewer, user_id: str) -> Response:
        fields = await posted(request, viewer)
        accounts = await billing.service.billing.ledger.accounts_for_user(user_id)
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
        if not errors:
            try:
                applied = await billing.wallet.top_up(
                    account.id,
                    Money(value, account.currency),
                    idempotency_key=fields.get("idempotency") or None,
                    reference=reference or f"console: {viewer.name}",
                )
            except (InvalidInput, Conflict) as exc:
                errors = field_errors(getattr(exc, "problems", []) or [f"amount: {exc}"])
            else:
                after = Money.from_minor(applied.balance_after.available_minor, account.currency).as_str()
                note = " (already applied)" if applied.replayed else ""
                return await user_page(
                    request, viewer, user_id, notice=f"Topped up {value} {account.currency}{note}; balance {after}."
                )
        return await user_page(request, viewer, user_id, errors=errors, status=422)

    @get("/top-ups")
    async def top_ups_page(request: Request, viewer: Viewer) -> Response:
        lines: list[dict[str, Any]] = []
        for u in await billing.service.billing.users.all(limit=1000):
            for account in await billing.service.billing.ledger.accounts_for_user(u.id):
                for line in await billing.service.billing.ledger.statement(account.id, limit=200):
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
        return page(request, "top_ups.html", viewer, lines=lines[:300], title="Top-ups")

    # ------------------------------------------------------------------ cards

    async def cards_page(
        request: Request,
        viewer: Viewer,
        *,
        notice: str = "",
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> HTMLResponse:
        users = {u.id: u for u in await billing.service.billing.users.all(limit=10_000)}
        return page(
            request,
            "cards.html",
            viewer,
            cards=await storage.cards.all(),
            users=users,
            notice=notice,
            status=status,
            title="Cards",
            now=clock.now(),
            errors=errors or {},
            values=values or {},
        )

    @post("/cards")
    async def card_add(request: Request, viewer: Viewer) -> Response:
        fields = await posted(request, viewer)
        uid = fields.get("uid", "").strip()
        label = fields.get("label", "").strip() or None
        user_id = fields.get("user_id", "").strip() or None
        errors: dict[str, str] = {}
        if not CARD_UID.match(uid):
            errors["uid"] = "1 to 36 letters, digits or . _ : - (what the reader sends)."
        if label is not None and len(label) > 200:
            errors["label"] = "At most 200 characters."
        account_id = None
        if user_id is not None:
            accounts = await billing.service.billing.ledger.accounts_for_user(user_id)
            if not accounts:
                errors["user_id"] = "This user has no prepaid account."
            else:
                account_id = accounts[0].id
        if not errors:
            card = Card(
                uid=uid,
                label=label,
                created_at=clock.now(),
                mode=CardMode.COMMERCIAL if account_id else CardMode.PERSONAL,
                account_id=account_id,
                user_id=user_id,
            )
            try:
                await register_card(storage.cards, card)
            except Conflict as exc:
                errors["uid"] = str(exc)
            else:
                kind = "prepaid, on the user's account" if account_id else "personal: charges without billing"
                return await cards_page(request, viewer, notice=f"Card {uid} registered ({kind}).")
        return await cards_page(request, viewer, errors=errors, values=fields, status=422)

    @get("/cards")
    async def cards_view(request: Request, viewer: Viewer) -> Response:
        return await cards_page(request, viewer)

    @post("/cards/{uid}/status")
    async def card_status(request: Request, viewer: Viewer, uid: str) -> Response:
        fields = await posted(request, viewer)
        card = await storage.cards.get(uid)
        if card is None:
            raise NotFound(f"no card {uid!r}")
        try:
            new = CardStatus(fields.get("status", ""))
        except ValueError:
            return await cards_page(request, viewer, notice="Choose a card status.", status=422)
        await storage.cards.update(replace(card, status=new))
        return await cards_page(request, viewer, notice=f"Card {uid} is now {new.value}.")

    # ------------------------------------------------------------------ tariffs

    @get("/tariffs")
    async def tariffs_page(request: Request, viewer: Viewer) -> Response:
        tariffs = await billing.service.billing.tariffs.all()
        assignments = await billing.service.billing.tariffs.assignments()
        return page(request, "tariffs.html", viewer, tariffs=tariffs, assignments=assignments, title="Tariffs")

    async def tariff_page(
        request: Request,
        viewer: Viewer,
        tariff_id: str,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        tariff = await billing.service.billing.tariffs.get(tariff_id)
        if tariff is None:
            raise NotFound(f"no tariff {tariff_id!r}")
        shown = {f: str(getattr(tariff, f)) for f in TARIFF_FIELDS}
        shown.update(values or {})
        return page(
            request,
            "tariff.html",
            viewer,
            tariff=tariff,
            values=shown,
            errors=errors or {},
            notice=notice,
            status=status,
            title=f"Tariff {tariff.name}",
            fields=TARIFF_FIELDS,
        )

    @get("/tariffs/{tariff_id}")
    async def tariff_view(request: Request, viewer: Viewer, tariff_id: str) -> Response:
        return await tariff_page(request, viewer, tariff_id)

    @post("/tariffs/{tariff_id}")
    async def tariff_edit(request: Request, viewer: Viewer, tariff_id: str) -> Response:
        fields = await posted(request, viewer)
        tariff = await billing.service.billing.tariffs.get(tariff_id)
        if tariff is None:
            raise NotFound(f"no tariff {tariff_id!r}")
        changes: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, (label, kind) in TARIFF_FIELDS.items():
            raw = fields.get(name, "").strip()
            if kind == "text":
                changes[name] = raw
            elif kind == "currency":
                try:
                    changes[name] = check_currency(raw.upper())
                except CurrencyError as exc:
                    errors[name] = str(exc)
            elif kind == "int":
                try:
                    changes[name] = int(raw or "0")
                except ValueError:
                    errors[name] = "A whole number of minutes."
            else:
                try:
                    number = Decimal(raw or "0")
                except InvalidOperation:
                    number = Decimal("NaN")
                if number.is_finite():
                    changes[name] = number
                else:
                    errors[name] = f"{label}: a number like 0.30."
        if not errors:
            updated = replace(tariff, **changes)
            for problem in tariff_problems(updated):
                key = next((f for f in TARIFF_FIELDS if problem.startswith(f)), "_form")
                errors[key] = problem
            if not errors:
                await billing.service.billing.tariffs.update(updated)
                return await tariff_page(request, viewer, tariff_id, notice="Tariff saved.")
        return await tariff_page(request, viewer, tariff_id, errors=errors, values=fields, status=422)

    return router


TARIFF_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Name", "text"),
    "currency": ("Currency", "currency"),
    "energy_per_kwh": ("Price per kWh", "price"),
    "time_per_minute": ("Price per minute charging", "price"),
    "parking_per_minute": ("Price per minute plugged in", "price"),
    "session_fee": ("Session fee", "price"),
    "idle_per_minute": ("Idle fee per minute", "price"),
    "idle_grace_minutes": ("Idle grace (minutes)", "int"),
    "vat_percent": ("VAT (%)", "price"),
    "description": ("Description", "text"),
}
"""The tariff fields the console edits (net prices); time-of-use bands are kept as they are (API)."""

_COMMANDS = {"remote-start", "remote-stop", "unlock-connector", "reset", "change-availability"}


def _int(fields: dict[str, str], name: str, problems: list[str], *, default: int | None = None) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        if default is None:
            problems.append(f"{name}: required")
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}: a whole number")
        return None
    if value < 0:
        problems.append(f"{name}: must not be negative")
    return value


def _command(fields: dict[str, str]) -> StationCommand:
    """The station command a console form asks for; ``InvalidInput`` naming each bad field."""
    name = fields.get("command", "")
    problems: list[str] = []
    if name not in _COMMANDS:
        raise InvalidInput("unknown command", [f"command: choose one of {', '.join(sorted(_COMMANDS))}"])
    if name == "remote-start":
        id_tag = fields.get("id_tag", "").strip()
        if not id_tag or len(id_tag) > 36:
            problems.append("id_tag: a card uid (1 to 36 characters)")
        evse = _int(fields, "evse_id", problems)
        if problems:
            raise InvalidInput("invalid remote-start", problems)
        return RemoteStart(id_tag=id_tag, evse_id=evse)
    if name == "remote-stop":
        tx = fields.get("transaction_id", "").strip()
        if not tx:
            raise InvalidInput("invalid remote-stop", ["transaction_id: choose the session to stop"])
        return RemoteStop(transaction_id=tx)
    if name == "unlock-connector":
        evse = _int(fields, "evse_id", problems)
        connector = _int(fields, "connector_id", problems, default=1)
        if problems or evse is None or connector is None:
            raise InvalidInput("invalid unlock-connector", problems)
        return UnlockConnector(evse_id=evse, connector_id=connector)
    if name == "reset":
        try:
            return Reset(kind=ResetKind(fields.get("kind", "Soft")))
        except ValueError:
            raise InvalidInput("invalid reset", ["kind: Soft or Hard"]) from None
    evse = _int(fields, "evse_id", problems, default=0)
    try:
        availability = Availability(fields.get("availability", ""))
    except ValueError:
        problems.append("availability: Operative or Inoperative")
    if problems:
        raise InvalidInput("invalid change-availability", problems)
    return ChangeAvailability(availability=availability, evse_id=evse or None)


def _safe_next(target: str) -> str:
    """Only paths inside the console (no open redirect to another site)."""
    return target if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target else PREFIX
