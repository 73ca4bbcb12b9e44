"""Sign-in and sign-out of operators (cookie sessions), and the console's own script and style sheet."""

from __future__ import annotations

import secrets
from importlib import resources

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ems.console.auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_S, Viewer, same
from ems.console.context import PAGE_HEADERS, PREFIX, Console, Refused, source
from ems.services.operators import check_sign_in, normalize_email
from ems.throttle import retry_after_header, security_event

_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


def safe_next(target: str) -> str:
    """Only paths inside the console (no open redirect to another site)."""
    return target if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target else PREFIX


def register(console: Console) -> None:
    router, clock, throttle, sessions = console.router, console.clock, console.throttle, console.sessions

    @router.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_form(request: Request, next: str = PREFIX) -> HTMLResponse:
        return _sign_in_page(request, next, {}, "")

    def _sign_in_page(
        request: Request, target: str, errors: dict[str, str], email: str, status: int = 200
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        body = console.env.get_template("sign_in.html").render(
            viewer=None, csrf=token, next=safe_next(target), errors=errors, email=email, path=request.url.path
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
        account = await check_sign_in(console.storage.operators, email, password)
        if account is None:
            lockout = throttle.failed(keys, now_s)
            security_event("console_sign_in_failed", source=source(request), lockout_s=round(lockout, 1))
            return _sign_in_page(request, target, {"_form": "Wrong email or password."}, email, 401)
        throttle.succeeded(keys[1])
        viewer = sessions.open(account.email, account.role, now_s)
        redirect = RedirectResponse(safe_next(target), status_code=303)
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

    @console.post("/sign-out")
    async def sign_out(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        if viewer.csrf is not None and not same(str(form.get("csrf", "")), viewer.csrf):
            raise Refused(403, "the form has expired: reload the page and retry")
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
