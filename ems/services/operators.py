"""Operator accounts of the console: create (CLI), check a sign-in, and check an API key (console and API).

Passwords are hashed with scrypt and a random salt (``ems.security``). A sign-in that fails for
any reason (unknown email, wrong password, disabled account) gets the same answer, and the caller
throttles failures (``ems.throttle``). To keep unknown emails as slow as wrong passwords, an
unknown email is checked against a dummy hash.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache

from ems.clock import Clock
from ems.domain.access import ApiKey, OperatorAccount, Role
from ems.errors import Conflict, InvalidInput
from ems.ports.stores import ApiKeyStore, OperatorStore
from ems.security import hash_api_key, hash_password, verify_password

MIN_OPERATOR_PASSWORD = 10
MAX_OPERATOR_PASSWORD = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def operator_problems(email: str, password: str) -> list[str]:
    """Every problem with a new account's email and password, each naming its field."""
    problems = []
    if not _EMAIL.match(normalize_email(email)) or len(email) > 254:
        problems.append("email: not an email address (name@example.com)")
    if not MIN_OPERATOR_PASSWORD <= len(password) <= MAX_OPERATOR_PASSWORD:
        problems.append(f"password: must be {MIN_OPERATOR_PASSWORD} to {MAX_OPERATOR_PASSWORD} characters")
    return problems


async def create_operator(store: OperatorStore, clock: Clock, email: str, password: str, role: Role) -> OperatorAccount:
    """A new operator account; ``InvalidInput`` for a bad email or password, ``Conflict`` if the email is taken."""
    problems = operator_problems(email, password)
    if problems:
        raise InvalidInput("cannot create operator", problems)
    account = OperatorAccount(
        id=secrets.token_hex(8),
        email=normalize_email(email),
        role=role,
        password_hash=hash_password(password),
        created_at=clock.now(),
    )
    if await store.by_email(account.email) is not None:
        raise Conflict(f"an operator with email {account.email!r} exists")
    try:
        await store.add(account)
    except Conflict as exc:
        raise Conflict(f"an operator with email {account.email!r} exists") from exc
    return account


async def check_sign_in(store: OperatorStore, email: str, password: str) -> OperatorAccount | None:
    """The account if ``email`` and ``password`` match an active account, else ``None`` (never says which)."""
    account = await store.by_email(normalize_email(email))
    if account is None:
        verify_password(password, _dummy_hash())  # as slow as a wrong password
        return None
    if not verify_password(password, account.password_hash) or account.disabled_at is not None:
        return None
    return account


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """The outcome of checking an API key: the key's id and role, or why it was refused."""

    key_id: str | None = None
    role: Role | None = None
    user_id: str | None = None
    refused: str | None = None


BOOTSTRAP_KEY_ID = "bootstrap-admin"


async def check_api_key(keys: ApiKeyStore, clock: Clock, key: str, *, admin_key: str | None) -> KeyCheck:
    """Who ``key`` is: the bootstrap admin key (constant-time compare), or a stored key not revoked nor expired."""
    if admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode()):
        return KeyCheck(key_id=BOOTSTRAP_KEY_ID, role=Role.ADMIN)
    stored: ApiKey | None = await keys.by_hash(hash_api_key(key))
    if stored is None:
        return KeyCheck(refused="unknown API key")
    if stored.revoked_at is not None:
        return KeyCheck(refused="revoked API key")
    if stored.expires_at is not None and stored.expires_at <= clock.now():
        return KeyCheck(refused="expired API key")
    return KeyCheck(key_id=stored.id, role=stored.role, user_id=stored.user_id)
