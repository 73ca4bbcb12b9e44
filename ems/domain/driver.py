"""Drivers signing in on the web: phone numbers, PINs and their sessions. Pure.

A driver signs in with the phone number on their user record and a PIN the operator set
(``PUT /api/v1/users/{id}/pin``). Phones are compared by ``phone_key``: digits only, with a
leading ``+`` kept, so ``+31 6-1234`` and ``+3161234`` are the same driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MIN_PIN_DIGITS = 4
MAX_PIN_DIGITS = 8
WEB_SESSION_S = 30 * 86_400
"""A driver stays signed in for 30 days on their phone (the cookie is HttpOnly, SameSite=Lax)."""


def phone_key(phone: str) -> str:
    """The comparable form of a phone number: its digits, with a leading ``+`` kept; ``""`` without digits."""
    digits = "".join(c for c in phone if c.isascii() and c.isdigit())
    if not digits:
        return ""
    return ("+" if phone.strip().startswith("+") else "") + digits


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` cannot be a driver's PIN, or ``None``."""
    if not (pin.isascii() and pin.isdigit()):
        return "pin must be digits only"
    if not MIN_PIN_DIGITS <= len(pin) <= MAX_PIN_DIGITS:
        return f"pin must be {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits"
    return None


@dataclass(frozen=True, slots=True)
class DriverPin:
    user_id: str
    phone_key: str
    """``phone_key`` of the user's phone when the PIN was set; sign-in finds the driver by it."""
    pin_hash: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in driver's browser. Only the hash of the cookie's token is stored."""

    token_hash: str
    user_id: str
    created_at: datetime
    expires_at: datetime
