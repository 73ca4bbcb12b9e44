"""Who is using the console: signed-in operators (cookie sessions kept in memory) or an API key (header).

A session is a random token in the cookie ``ems_console`` (HttpOnly, SameSite=Strict, Secure when
the request came over TLS); its CSRF token goes into every form and is checked on every POST.
Before sign-in, the sign-in form is protected by a double-submit token (cookie ``ems_console_csrf``
equal to the form's field). Sessions live in this process's memory: a restart signs everyone out.
Machines send ``Authorization: Bearer <API key>`` instead (no cookie, no CSRF: a browser never adds
that header by itself). Failed sign-ins and keys are throttled per source and per email/key.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from ems.domain.access import ROLE_RANK, Role

SESSION_COOKIE = "ems_console"
CSRF_COOKIE = "ems_console_csrf"
SESSION_TTL_S = 8 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person or machine behind a request."""

    name: str
    """The operator's email, or ``API key <id>``."""
    role: Role
    csrf: str | None
    """``None`` for API-key requests (no CSRF check)."""
    token: str | None = None

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def can_edit(self) -> bool:
        return self.at_least(Role.OPERATOR)


@dataclass(slots=True)
class _Session:
    viewer: Viewer
    expires_s: float


class Sessions:
    """Signed-in sessions by token; time is monotonic seconds passed in."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._by_token: dict[str, _Session] = {}

    def open(self, name: str, role: Role, now_s: float) -> Viewer:
        self._expire(now_s)
        if len(self._by_token) >= MAX_SESSIONS:
            oldest = min(self._by_token, key=lambda t: self._by_token[t].expires_s)
            del self._by_token[oldest]
        token = secrets.token_urlsafe(32)
        viewer = Viewer(name=name, role=role, csrf=secrets.token_urlsafe(24), token=token)
        self._by_token[token] = _Session(viewer, now_s + self._ttl_s)
        return viewer

    def get(self, token: str | None, now_s: float) -> Viewer | None:
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None or session.expires_s <= now_s:
            self._by_token.pop(token, None)
            return None
        return session.viewer

    def close(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def _expire(self, now_s: float) -> None:
        for token in [t for t, s in self._by_token.items() if s.expires_s <= now_s]:
            del self._by_token[token]


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; ``False`` when either is missing."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())
