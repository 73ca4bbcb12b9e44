"""API access: keys and the roles they carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    """Everything, including API keys."""
    OPERATOR = "operator"
    """Stations, cards, users, tariffs, commands; not API keys."""
    ANALYST = "analyst"
    """Read-only: sessions, samples, reports."""
    DRIVER = "driver"
    """Their own account, cards and sessions; start and stop their own charging."""


ROLE_RANK: dict[Role, int] = {Role.DRIVER: 0, Role.ANALYST: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: Role
    key_hash: str
    """SHA-256 hex of the key; the key itself is shown once, at creation, and never stored."""
    created_at: datetime
    user_id: str | None = None
    """For driver keys: the user whose account and cards the key may act on."""
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    """After this instant the key is refused like a revoked one; ``None``: never expires."""


@dataclass(frozen=True, slots=True)
class OperatorAccount:
    """A person who signs in to the operator's console with email and password (same roles as API keys)."""

    id: str
    email: str
    """Lower-cased; unique."""
    role: Role
    password_hash: str
    """scrypt (``ems.security.hash_password``); the password itself is never stored."""
    created_at: datetime
    disabled_at: datetime | None = None
    """After this instant the account cannot sign in; ``None``: active."""
