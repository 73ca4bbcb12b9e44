"""Drivers on the web: PINs set by the operator, sign-in with phone and PIN, browser sessions.

PINs are hashed with scrypt (``ems.security``), as station passwords are: a 4-digit PIN is
guessable offline from its hash whatever the hash, so what protects it is the throttle in
front of ``sign_in`` (``ems.throttle``, per source and per phone) and that hashes never leave
the database. A session token is 32 random bytes; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache

from ems.clock import Clock
from ems.domain.billing import User
from ems.domain.driver import WEB_SESSION_S, DriverPin, WebSession, phone_key, pin_problem
from ems.errors import InvalidInput, NotFound
from ems.ports.billing import UserStore
from ems.ports.web import DriverAuthStore
from ems.security import hash_password, verify_password


@cache
def _dummy_hash() -> str:
    """Checked when no PIN is set for the phone, so an unknown phone costs as long as a wrong PIN."""
    return hash_password("0000")


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    """Goes in the cookie; never stored."""
    session: WebSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class DriverAuth:
    def __init__(self, store: DriverAuthStore, users: UserStore, clock: Clock) -> None:
        self.store = store
        self.users = users
        self.clock = clock

    async def set_pin(self, user_id: str, pin: str) -> None:
        """Set or reset the PIN; the user needs a phone number. Signs the driver out everywhere."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        problems = []
        if (why := pin_problem(pin)) is not None:
            problems.append(why)
        key = phone_key(user.phone or "")
        if not key:
            problems.append("phone: the user needs a phone number to sign in with a PIN")
        if problems:
            raise InvalidInput("cannot set this PIN", problems)
        await self.store.set_pin(DriverPin(user_id, key, hash_password(pin), self.clock.now()))
        await self.store.end_sessions_of(user_id)

    async def phone_changed(self, user: User) -> None:
        """Keep the PIN findable under the user's new phone number (``PATCH /api/v1/users/{id}``)."""
        current = await self.store.pin(user.id)
        key = phone_key(user.phone or "")
        if current is not None and key and current.phone_key != key:
            await self.store.set_pin(replace(current, phone_key=key, updated_at=self.clock.now()))

    async def sign_in(self, phone: str, pin: str) -> SignedIn | None:
        """A new session for the driver with this phone and PIN; ``None`` if they do not match."""
        key = phone_key(phone)
        candidates = await self.store.pins_for_phone(key) if key and pin.isascii() and pin.isdigit() else []
        matched: DriverPin | None = None
        for candidate in candidates:
            if verify_password(pin, candidate.pin_hash):
                matched = candidate
                break
        if not candidates:
            verify_password(pin or "0", _dummy_hash())
        if matched is None:
            return None
        user = await self.users.get(matched.user_id)
        if user is None or phone_key(user.phone or "") != key:  # the phone changed since the PIN was set
            return None
        now = self.clock.now()
        await self.store.purge_expired(now)  # sessions end by themselves; their rows go on the next sign-in
        token = secrets.token_urlsafe(32)
        session = WebSession(token_hash(token), user.id, now, now + timedelta(seconds=WEB_SESSION_S))
        await self.store.add_session(session)
        return SignedIn(token, session)

    async def user_for(self, token: str | None) -> User | None:
        """The signed-in driver of a cookie's token, or ``None`` (unknown, expired, signed out)."""
        if not token or len(token) > 200:
            return None
        session = await self.store.session(token_hash(token))
        if session is None or session.expires_at <= self.clock.now():
            return None
        return await self.users.get(session.user_id)

    async def sign_out(self, token: str | None) -> None:
        if token and len(token) <= 200:
            await self.store.end_session(token_hash(token))
