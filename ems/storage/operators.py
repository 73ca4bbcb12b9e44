"""Operator accounts of the console (passwords stored as scrypt hashes)."""

from __future__ import annotations

from ems.domain.access import OperatorAccount, Role
from ems.storage.db import Database
from ems.storage.rows import build, field_names, insert_sql, select_sql, values

_COLUMNS = field_names(OperatorAccount)
_SELECT = select_sql("operators", _COLUMNS)


class SqlOperatorStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, account: OperatorAccount) -> None:
        """Raises ``Conflict`` if the id or the email exists."""
        await self._db.execute(insert_sql("operators", _COLUMNS), values(account, _COLUMNS))

    async def by_email(self, email: str) -> OperatorAccount | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE email = ?", (email,))
        return None if row is None else build(OperatorAccount, row, {"role": Role})

    async def get(self, operator_id: str) -> OperatorAccount | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE id = ?", (operator_id,))
        return None if row is None else build(OperatorAccount, row, {"role": Role})

    async def all(self) -> list[OperatorAccount]:
        rows = await self._db.fetchall(f"{_SELECT} ORDER BY email")
        return [build(OperatorAccount, row, {"role": Role}) for row in rows]

    async def set_password(self, operator_id: str, password_hash: str) -> bool:
        sql = "UPDATE operators SET password_hash = ? WHERE id = ?"
        return await self._db.execute(sql, (password_hash, operator_id)) > 0
