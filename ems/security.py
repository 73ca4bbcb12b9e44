"""Secrets: password hashing for station credentials (OCPP security profile 1, HTTP Basic), API keys.

scrypt (RFC 7914) with a random 16-byte salt, N=2**14, r=8, p=1: ~30 ms and 16 MiB per
check on this hardware, cheap enough for a station's connect, costly for offline guessing.
Stored as ``scrypt$N$r$p$salt_b64$hash_b64``. Verification is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH = 8
"""OCPP 1.6 security whitepaper: AuthorizationKey is 16-40 bytes; we accept >= 8 for test rigs."""
MAX_PASSWORD_LENGTH = 40
"""OCPP: the station password is at most 40 characters (BasicAuthPassword / AuthorizationKey)."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return "$".join(
        ["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    )


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; False for any malformed hash (never raises)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable for a station, or ``None``."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if not password.isprintable():
        return "password must be printable characters"
    return None


API_KEY_PREFIX = "ems_"


def new_api_key() -> str:
    """A fresh API key (shown once to its owner; only its hash is stored)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 hex of the key: keys are 32 random bytes, so a fast hash is enough (no guessing)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
