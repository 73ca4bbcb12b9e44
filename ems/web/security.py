"""Cookies and CSRF for the driver pages.

* ``ems_session``: the sign-in token (``ems.services.drivers``), HttpOnly, SameSite=Lax,
  Secure when the request came over https.
* ``ems_csrf``: a random per-browser value (HttpOnly). Every form carries
  ``csrf = HMAC-SHA256(web_secret, cookie value)``; a POST whose field does not match its
  cookie is refused (403). A cross-site page can neither read the cookie nor compute the HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION_COOKIE = "ems_session"
CSRF_COOKIE = "ems_csrf"
LANG_COOKIE = "ems_lang"
CSRF_FIELD = "csrf"
_YEAR_S = 365 * 86_400


def is_https(request: Request) -> bool:
    """Served over TLS: directly, or behind a proxy that says so (``X-Forwarded-Proto``)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age_s: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age_s, httponly=True, samesite="lax", secure=is_https(request), path="/"
    )


class Csrf:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def seed(self, request: Request) -> str:
        """This browser's CSRF cookie value (a fresh one if it has none yet)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if 16 <= len(current) <= 100:
            return current
        fresh: str = getattr(request.state, "csrf_seed", None) or secrets.token_urlsafe(24)
        request.state.csrf_seed = fresh
        return fresh

    def token(self, seed: str) -> str:
        return hmac.new(self._secret, seed.encode("utf-8"), hashlib.sha256).hexdigest()

    def remember(self, request: Request, response: Response) -> None:
        """Set the cookie if this request created the seed."""
        seed = getattr(request.state, "csrf_seed", None)
        if seed:
            set_cookie(request, response, CSRF_COOKIE, seed, _YEAR_S)

    def valid(self, request: Request, submitted: str | None) -> bool:
        seed = request.cookies.get(CSRF_COOKIE, "")
        if not seed or not submitted:
            return False
        return hmac.compare_digest(self.token(seed), submitted)
