"""Driver PINs and web sessions (``ems.ports.web.DriverAuthStore``)."""

from __future__ import annotations

from datetime import datetime

from ems.domain.driver import DriverPin, WebSession
from ems.errors import Conflict, NotFound
from ems.storage.db import Database
from ems.storage.rows import build, field_names, insert_sql, select_sql, values

_PIN = field_names(DriverPin)
_SESSION = field_names(WebSession)


class SqlDriverAuthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_pin(self, pin: DriverPin) -> None:
        async with self._db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM billing_users WHERE id = ?", (pin.user_id,)) is None:
                raise NotFound(f"no user {pin.user_id!r}")
            await tx.execute("DELETE FROM driver_pins WHERE user_id = ?", (pin.user_id,))
            try:
                await tx.execute(insert_sql("driver_pins", _PIN), values(pin, _PIN))
            except Conflict as exc:  # only a concurrent set of the same user's PIN
                raise Conflict(f"the PIN of {pin.user_id!r} is being changed; try again") from exc

    async def pin(self, user_id: str) -> DriverPin | None:
        row = await self._db.fetchone(f"{select_sql('driver_pins', _PIN)} WHERE user_id = ?", (user_id,))
        return None if row is None else build(DriverPin, row)

    async def pins_for_phone(self, phone_key: str) -> list[DriverPin]:
        rows = await self._db.fetchall(
            f"{select_sql('driver_pins', _PIN)} WHERE phone_key = ? ORDER BY updated_at DESC", (phone_key,)
        )
        return [build(DriverPin, row) for row in rows]

    async def add_session(self, session: WebSession) -> None:
        await self._db.execute(insert_sql("web_sessions", _SESSION), values(session, _SESSION))

    async def session(self, token_hash: str) -> WebSession | None:
        row = await self._db.fetchone(f"{select_sql('web_sessions', _SESSION)} WHERE token_hash = ?", (token_hash,))
        return None if row is None else build(WebSession, row)

    async def end_session(self, token_hash: str) -> bool:
        return await self._db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,)) > 0

    async def end_sessions_of(self, user_id: str) -> int:
        return await self._db.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))

    async def purge_expired(self, now: datetime) -> int:
        return await self._db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
