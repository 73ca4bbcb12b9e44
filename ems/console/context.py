"""What every console page shares: the ports (``ConsoleDeps``), the templates, the signed-in sessions,
and the guard that turns a page handler into a route (who asks, with what role, CSRF on forms).

A page module registers its handlers with ``@console.get(path)`` / ``@console.post(path)``: the
handler gets the ``Viewer`` (analyst at least; ``posted`` asks for operator and checks the CSRF
token); a sign-in redirect, a refusal or a ``NotFound`` becomes its page. ``submit`` is the one
shape of a form that edits: checked fields -> the service call -> a notice, or the refusal field
by field, with the page shown again (422).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ems.console.auth import SESSION_COOKIE, Sessions, Viewer, same
from ems.console.deps import ConsoleDeps
from ems.domain.access import Role
from ems.errors import InvalidInput, NotFound
from ems.security import hash_api_key
from ems.services.operators import check_api_key
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

Handler = Callable[..., Awaitable[Response]]
Render = Callable[..., Awaitable[HTMLResponse]]
"""A page shown again: ``render(notice=...)`` or ``render(errors=..., status=422[, values=...])``."""


def field_errors(problems: list[str]) -> dict[str, str]:
    """``"name: message"`` problems as {field: message}; a problem naming no field goes under ``_form``."""
    out: dict[str, str] = {}
    for problem in problems:
        name, sep, message = problem.partition(":")
        key = name.strip() if sep and " " not in name.strip() else "_form"
        text = message.strip() if key != "_form" else problem
        out[key] = f"{out[key]}; {text}" if key in out else text
    return out


def refused_fields(exc: Exception, field: str | None = None) -> dict[str, str]:
    """A service's refusal field by field: its ``problems``, else (when ``field`` is named) its message there."""
    problems: list[str] = list(getattr(exc, "problems", []))
    if field is not None and not problems:
        problems = [f"{field}: {exc}"]
    return field_errors(problems)


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers or {}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("ems.console", "templates"), autoescape=select_autoescape(["html"]))
    env.globals["prefix"] = PREFIX
    return env


def source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class Console:
    """One console: its router, templates and sessions, over the ports in ``deps``."""

    def __init__(self, deps: ConsoleDeps, router: APIRouter) -> None:
        self.deps = deps
        self.router = router
        self.env = _environment()
        self.sessions = Sessions()
        self.throttle = AuthThrottle(deps.throttle)
        self.clock = deps.clock
        self.storage = deps.storage
        self.billing = deps.billing
        self.env.globals.update(local=self.local, ago=self.ago)

    # ------------------------------------------------------------------ display

    def zone_of(self, site_id: str | None = None) -> ZoneInfo:
        site = self.deps.site(site_id) or self.deps.sites[0]
        return ZoneInfo(site.timezone)

    def local(self, t: datetime | None, site_id: str | None = None) -> str:
        if t is None:
            return "never"
        return t.astimezone(self.zone_of(site_id)).strftime("%Y-%m-%d %H:%M %Z")

    def ago(self, t: datetime | None) -> str:
        if t is None:
            return ""
        s = max(0.0, (self.clock.now() - t).total_seconds())
        if s < 90:
            return f"{s:.0f} s ago"
        if s < 5400:
            return f"{s / 60:.0f} min ago"
        if s < 172_800:
            return f"{s / 3600:.1f} h ago"
        return f"{s / 86400:.0f} days ago"

    def page(self, request: Request, template: str, viewer: Viewer, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(request=request, viewer=viewer, path=request.url.path, **ctx)
        return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)

    def refused(self, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        html = self.env.get_template("refused.html").render(status=status, message=message, viewer=None)
        return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})

    # ------------------------------------------------------------------ who asks

    async def who(self, request: Request) -> Viewer:
        """The viewer, or ``Redirect`` to sign-in (browser) / ``Refused`` (API key)."""
        auth = request.headers.get("authorization")
        if auth:
            scheme, _, key = auth.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise Refused(401, "send Authorization: Bearer <API key>")
            key = key.strip()
            keys = (f"ip:{source(request)}", f"key:{hash_api_key(key)[:16]}")
            now_s = self.clock.monotonic()
            wait = self.throttle.retry_after(keys, now_s)
            if wait is not None:
                raise Refused(429, "too many failed attempts; retry later", {"Retry-After": retry_after_header(wait)})
            checked = await check_api_key(self.storage.api_keys, self.clock, key, admin_key=self.deps.admin_api_key)
            if checked.role is None:
                self.throttle.failed(keys, now_s)
                security_event("console_key_failed", source=source(request), reason=checked.refused)
                raise Refused(401, "unknown, revoked or expired API key")
            self.throttle.succeeded(keys[1])
            return Viewer(name=f"API key {checked.key_id}", role=checked.role, csrf=None)
        viewer = self.sessions.get(request.cookies.get(SESSION_COOKIE), self.clock.monotonic())
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise Redirect(f"{PREFIX}/sign-in?next={quote(target, safe='')}")
        return viewer

    @staticmethod
    def need(viewer: Viewer, role: Role) -> None:
        if not viewer.at_least(role):
            raise Refused(403, f"this needs the {role.value} role; you have {viewer.role.value}")

    async def posted(self, request: Request, viewer: Viewer) -> dict[str, str]:
        """The form's fields, after the CSRF check (API-key requests carry none)."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if viewer.csrf is not None and not same(fields.get("csrf"), viewer.csrf):
            security_event("console_csrf_refused", source=source(request), path=request.url.path)
            raise Refused(403, "the form has expired or did not come from this console: reload the page and retry")
        self.need(viewer, Role.OPERATOR)
        return fields

    # ------------------------------------------------------------------ routes

    def guarded(self, handler: Handler) -> Handler:
        async def run(request: Request, **kwargs: Any) -> Response:
            try:
                viewer = await self.who(request)
                self.need(viewer, Role.ANALYST)
                return await handler(request, viewer, **kwargs)
            except Redirect as r:
                return RedirectResponse(r.url, status_code=303)
            except Refused as r:
                return self.refused(r.status, r.message, r.headers)
            except NotFound as e:
                return self.refused(404, str(e))

        run.__name__ = handler.__name__
        signature = inspect.signature(handler)
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for name, p in signature.parameters.items() if name != "viewer"]
        )
        return run

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Register a guarded page handler ``(request, viewer, **path_and_query) -> Response``."""

        def deco(handler: Handler) -> Handler:
            self.router.add_api_route(path, self.guarded(handler), methods=[method], response_class=HTMLResponse)
            return handler

        return deco

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("POST", path)

    # ------------------------------------------------------------------ forms

    @staticmethod
    async def submit(
        render: Render,
        errors: dict[str, str],
        act: Callable[[], Awaitable[str]],
        *,
        values: dict[str, str] | None = None,
        refusals: tuple[type[Exception], ...] = (InvalidInput,),
        field: str | None = None,
    ) -> HTMLResponse:
        """The outcome of an edit form: when its fields are valid, ``act()`` and its notice; else, or when the
        service refuses (``refusals``, shown by ``refused_fields(exc, field)``), the page again with the errors."""
        if not errors:
            try:
                notice = await act()
            except refusals as exc:
                errors = refused_fields(exc, field)
            else:
                return await render(notice=notice)
        shown = {} if values is None else {"values": values}
        return await render(errors=errors, status=422, **shown)
