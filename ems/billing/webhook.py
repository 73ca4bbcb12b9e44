"""Payment-provider webhooks: HMAC-SHA256 signatures with a timestamp, checked without the clock (pure).

Scheme (the one Stripe and others use): the provider sends the header
``EMS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. A request is
accepted when one ``v1`` matches in constant time and ``t`` is within ``TOLERANCE_S`` of now.
A captured request replayed later fails the time check; replayed within the window, its event
id has been credited already and is not credited again (``Wallet.credit_payment`` is
idempotent per provider and event id).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from ems.errors import BillingError

SIGNATURE_HEADER = "EMS-Signature"
TOLERANCE_S = 300
"""Five minutes: covers provider retry jitter and clock skew, short enough that a stolen request goes stale."""


class InvalidSignature(BillingError):
    """A webhook whose signature is missing, malformed, wrong, or too old (a replay)."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value a provider sends for ``body`` at ``timestamp`` (for tests and simulators)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(secret: bytes, header: str | None, body: bytes, now: datetime, *, tolerance_s: int = TOLERANCE_S) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp or raises ``InvalidSignature``."""
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<hex>")
    expected = _mac(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignature("signature does not match the body")
    age_s = now.timestamp() - timestamp
    if abs(age_s) > tolerance_s:
        raise InvalidSignature(
            f"signed {int(age_s)} s ago, outside the {tolerance_s} s window: a replay or a bad clock"
        )
    return timestamp


def _mac(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
