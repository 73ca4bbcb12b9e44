"""What the driver web pages store: PINs (hashed) and signed-in browser sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ems.domain.driver import DriverPin, WebSession


class DriverAuthStore(Protocol):
    async def set_pin(self, pin: DriverPin) -> None:
        """Set or replace the user's PIN; raises ``NotFound`` for an unknown user."""
        ...

    async def pin(self, user_id: str) -> DriverPin | None: ...

    async def pins_for_phone(self, phone_key: str) -> list[DriverPin]:
        """Every PIN set for this phone key (normally one)."""
        ...

    async def add_session(self, session: WebSession) -> None: ...

    async def session(self, token_hash: str) -> WebSession | None:
        """The session, expired or not: the caller checks ``expires_at``."""
        ...

    async def end_session(self, token_hash: str) -> bool: ...

    async def end_sessions_of(self, user_id: str) -> int:
        """Sign the user out everywhere (their PIN was reset); returns how many sessions ended."""
        ...

    async def purge_expired(self, now: datetime) -> int: ...
