"""The quarantine: inbound messages that could not be applied, with their reasons."""

from __future__ import annotations

from ems.domain.quarantine import QuarantinedMessage, QuarantineSource
from ems.storage.db import Database, Row
from ems.storage.rows import build, field_names, select_sql, values

_COLUMNS = field_names(QuarantinedMessage)
_INSERT = (
    f"INSERT INTO quarantined_messages ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT DO NOTHING"
)
_SELECT = select_sql("quarantined_messages", _COLUMNS)


def _entry(row: Row) -> QuarantinedMessage:
    return build(QuarantinedMessage, row, {"source": QuarantineSource})


class SqlQuarantineStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, entry: QuarantinedMessage) -> bool:
        """Store ``entry``; ``False`` if an entry with its id (the same message) is there already."""
        return await self._db.execute(_INSERT, values(entry, _COLUMNS)) > 0

    async def list(
        self, *, limit: int = 100, offset: int = 0, source: QuarantineSource | None = None
    ) -> list[QuarantinedMessage]:
        """Newest first."""
        where, params = ("", ()) if source is None else (" WHERE source = ?", (source,))
        rows = await self._db.fetchall(
            f"{_SELECT}{where} ORDER BY quarantined_at DESC, id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [_entry(r) for r in rows]

    async def count(self, source: QuarantineSource | None = None) -> int:
        where, params = ("", ()) if source is None else (" WHERE source = ?", (source,))
        async with self._db.transaction(readonly=True) as tx:
            return int(await tx.fetchval(f"SELECT count(*) FROM quarantined_messages{where}", params))
