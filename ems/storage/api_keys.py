"""API keys (stored as hashes)."""

from __future__ import annotations

from datetime import datetime

from ems.domain.access import ApiKey, Role
from ems.storage.db import Database
from ems.storage.rows import build, field_names, insert_sql, select_sql, values

_COLUMNS = field_names(ApiKey)
_SELECT = select_sql("api_keys", _COLUMNS)


class SqlApiKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, key: ApiKey) -> None:
        """Raises ``Conflict`` if the id or the hash exists."""
        await self._db.execute(insert_sql("api_keys", _COLUMNS), values(key, _COLUMNS))

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not: the caller checks ``revoked_at``."""
        row = await self._db.fetchone(f"{_SELECT} WHERE key_hash = ?", (key_hash,))
        return None if row is None else build(ApiKey, row, {"role": Role})

    async def all(self) -> list[ApiKey]:
        rows = await self._db.fetchall(f"{_SELECT} ORDER BY created_at, id")
        return [build(ApiKey, row, {"role": Role}) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """True if the key existed and was active; a revoked key keeps its first revocation time."""
        sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        return await self._db.execute(sql, (at, key_id)) > 0
