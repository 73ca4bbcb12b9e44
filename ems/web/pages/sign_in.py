"""Signing in with phone number and PIN (throttled per source and per phone), and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ems.domain.driver import phone_key
from ems.throttle import retry_after_header, security_event
from ems.web.context import DriverSite, EvseId, StationId, charger_url, local_or
from ems.web.security import SESSION_COOKIE, set_cookie

_SESSION_MAX_AGE_S = 30 * 86_400


async def sign_in(site: DriverSite, request: Request, station_id: str | None, evse_id: int | None) -> Response:
    """Sign in, then back to the charger page (``station_id``) or to "My sessions"."""
    got = await site.posted(request)
    if isinstance(got, Response):
        return got
    c, form = got
    t = c.texts
    back = charger_url(station_id, evse_id) if station_id and evse_id is not None else "/me"
    phone, pin = form.get("phone", "").strip()[:40], form.get("pin", "").strip()[:20]
    source = request.client.host if request.client else "unknown"
    identity = f"phone:{phone_key(phone) or phone}"  # "+46 70..." and "+4670..." are one phone to throttle
    keys = (f"ip:{source}", identity)
    now = site.s.clock.monotonic()
    wait = site.throttle.retry_after(keys, now)
    if wait is not None:
        response = site.render(
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
    signed = await site.s.drivers.sign_in(phone, pin)
    if signed is None:
        site.throttle.failed(keys, now)
        security_event("web_sign_in_failed", source=source)
        return site.render(
            c,
            "signin_failed.html",
            status_code=401,
            back=back,
            message=t.gettext("The phone number or PIN is not right. Please try again."),
        )
    site.throttle.succeeded(identity)
    redirect = RedirectResponse(back, status_code=303)
    set_cookie(request, redirect, SESSION_COOKIE, signed.token, _SESSION_MAX_AGE_S)
    return redirect


def register(router: APIRouter, site: DriverSite) -> None:
    @router.post("/c/{station_id}/{evse_id}/sign-in")
    async def sign_in_here(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await sign_in(site, request, station_id, evse_id)

    @router.post("/sign-in")
    async def sign_in_me(request: Request) -> Response:
        return await sign_in(site, request, None, None)

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        got = await site.posted(request)
        if isinstance(got, Response):
            return got
        _, form = got
        await site.s.drivers.sign_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(local_or(form.get("next"), "/me"), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
