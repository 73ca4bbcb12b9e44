"""RFID cards (id tokens)."""

from __future__ import annotations

from ems.domain.card import Card, CardMode, CardStatus
from ems.errors import NotFound
from ems.storage.db import Database
from ems.storage.rows import build, field_names, insert_sql, select_sql, update_sql, values

_COLUMNS = field_names(Card)
_UPDATABLE = tuple(c for c in _COLUMNS if c != "uid")
_SELECT = select_sql("cards", _COLUMNS)
_CONVERT = {"status": CardStatus, "mode": CardMode}


class SqlCardStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, card: Card) -> None:
        await self._db.execute(insert_sql("cards", _COLUMNS), values(card, _COLUMNS))

    async def get(self, uid: str) -> Card | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE uid = ?", (uid,))
        return None if row is None else build(Card, row, _CONVERT)

    async def all(self) -> list[Card]:
        return [build(Card, row, _CONVERT) for row in await self._db.fetchall(f"{_SELECT} ORDER BY uid")]

    async def update(self, card: Card) -> None:
        params = (*values(card, _UPDATABLE), card.uid)
        if await self._db.execute(update_sql("cards", _COLUMNS, "uid"), params) == 0:
            raise NotFound(f"no card {card.uid!r}")

    async def delete(self, uid: str) -> bool:
        return await self._db.execute("DELETE FROM cards WHERE uid = ?", (uid,)) > 0
