"""Billing repositories: users, accounts + ledger (holds, idempotency keys), tariffs, session costs.

Money moves only through ``SqlLedgerStore.apply``: one transaction that locks the account row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the
database write lock), so two holds on one account are decided one after the other and the
second sees the first. Balances are sums of entries, computed inside that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ems.billing.codec import cdr_to_json, tariff_from_json, tariff_to_json
from ems.billing.ledger import check_balance, settled_cost
from ems.domain.billing import Account, Applied, AssignmentScope, IdempotencyClaim, SessionCost, TariffAssignment, User
from ems.domain.ledger import AccountState, Balance, Book, Decision, Entry, Hold, HoldStatus, Movement, MovementKind
from ems.domain.tariff import Tariff
from ems.errors import Conflict, IdempotencyConflict, NotFound
from ems.storage.db import Database, Json, Row, Tx
from ems.storage.rollups import RollupWriter, cost_from_row, writer_for
from ems.storage.rows import build, field_names, insert_sql, select_sql, values

LEDGER_SEQUENCE = "ledger_seq"

_HOLD_COLUMNS = field_names(Hold)
_SELECT_HOLD = select_sql("ledger_holds", _HOLD_COLUMNS)
_UPSERT_HOLD = (
    insert_sql("ledger_holds", _HOLD_COLUMNS)
    + " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _HOLD_COLUMNS if c != "id")
)
_MOVEMENT_COLUMNS = (
    "id",
    "seq",
    "account_id",
    "kind",
    "currency",
    "at",
    "hold_id",
    "session_id",
    "reference",
    "memo",
    "available_after_minor",
    "held_after_minor",
    "uncollected_after_minor",
)


def _hold(row: Row) -> Hold:
    return build(Hold, row, {"status": HoldStatus})


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user: User) -> None:
        await self._db.execute(
            "INSERT INTO billing_users (id, name, phone, email, user_group, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (user.id, user.name, user.phone, user.email, user.group, user.created_at),
        )

    async def get(self, user_id: str) -> User | None:
        row = await self._db.fetchone("SELECT * FROM billing_users WHERE id = ?", (user_id,))
        return None if row is None else _user(row)

    async def all(self, *, limit: int = 1000) -> list[User]:
        rows = await self._db.fetchall("SELECT * FROM billing_users ORDER BY created_at, id LIMIT ?", (limit,))
        return [_user(r) for r in rows]

    async def update(self, user: User) -> None:
        sql = "UPDATE billing_users SET name = ?, phone = ?, email = ?, user_group = ? WHERE id = ?"
        if await self._db.execute(sql, (user.name, user.phone, user.email, user.group, user.id)) == 0:
            raise NotFound(f"no user {user.id!r}")


def _user(row: Row) -> User:
    return User(row["id"], row["name"], row["created_at"], row["phone"], row["email"], row["user_group"])


class SqlLedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_account(self, account: Account) -> None:
        await self._db.execute(
            "INSERT INTO billing_accounts (id, user_id, currency, created_at) VALUES (?, ?, ?, ?)",
            (account.id, account.user_id, account.currency, account.created_at),
        )

    async def account(self, account_id: str) -> Account | None:
        row = await self._db.fetchone("SELECT * FROM billing_accounts WHERE id = ?", (account_id,))
        return None if row is None else build(Account, row)

    async def accounts_for_user(self, user_id: str) -> list[Account]:
        rows = await self._db.fetchall(
            "SELECT * FROM billing_accounts WHERE user_id = ? ORDER BY created_at", (user_id,)
        )
        return [build(Account, r) for r in rows]

    async def balance(self, account_id: str) -> Balance:
        async with self._db.transaction(readonly=True) as tx:
            account = await tx.fetchone("SELECT currency FROM billing_accounts WHERE id = ?", (account_id,))
            if account is None:
                raise NotFound(f"no account {account_id!r}")
            return await _balance(tx, account_id, account["currency"])

    async def apply(
        self,
        account_id: str,
        decide: Callable[[AccountState], Decision],
        *,
        idempotency: IdempotencyClaim | None = None,
        cost: SessionCost | None = None,
        session_id: str | None = None,
    ) -> Applied:
        async with self._db.transaction() as tx:
            lock = f"SELECT currency FROM billing_accounts WHERE id = ?{tx.dialect.for_update}"
            account = await tx.fetchone(lock, (account_id,))
            if account is None:
                raise NotFound(f"no account {account_id!r}")
            if idempotency is not None:
                replay = await _replay(tx, idempotency)
                if replay is not None:
                    return replay
            balance = await _balance(tx, account_id, account["currency"])
            rows = await tx.fetchall(
                f"{_SELECT_HOLD} WHERE account_id = ? AND status = 'open' ORDER BY created_at", (account_id,)
            )
            revenue = 0 if session_id is None else await _session_revenue(tx, account_id, session_id)
            decision = decide(AccountState(account_id, balance, tuple(_hold(r) for r in rows), revenue))
            movement = decision.movement
            if movement.account_id != account_id:
                raise ValueError(f"movement {movement.id} is for account {movement.account_id}, not {account_id}")
            after = balance.after(movement)
            check_balance(after)
            await _insert_movement(tx, movement, after)
            for hold in decision.holds:
                await tx.execute(_UPSERT_HOLD, values(hold, _HOLD_COLUMNS))
            if idempotency is not None:
                await tx.execute(
                    "INSERT INTO idempotency_keys (scope, idem_key, request_hash, movement_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (idempotency.scope, idempotency.key, idempotency.request_hash, movement.id, movement.at),
                )
            if cost is not None:
                await _insert_cost(tx, settled_cost(cost, movement), writer_for(self._db))
            return Applied(movement, after, decision.holds)

    async def statement(self, account_id: str, *, limit: int = 100) -> list[Applied]:
        async with self._db.transaction(readonly=True) as tx:
            rows = await tx.fetchall(
                "SELECT * FROM ledger_movements WHERE account_id = ? ORDER BY seq DESC LIMIT ?", (account_id, limit)
            )
            return await _applied(tx, rows)

    async def hold(self, hold_id: str) -> Hold | None:
        row = await self._db.fetchone(f"{_SELECT_HOLD} WHERE id = ?", (hold_id,))
        return None if row is None else _hold(row)

    async def hold_for_session(self, session_id: str) -> Hold | None:
        row = await self._db.fetchone(f"{_SELECT_HOLD} WHERE session_id = ?", (session_id,))
        return None if row is None else _hold(row)

    async def open_holds(self, *, id_tag: str | None = None, unlinked_only: bool = False) -> list[Hold]:
        sql = f"{_SELECT_HOLD} WHERE status = 'open'"
        params: list[Any] = []
        if id_tag is not None:
            sql += " AND id_tag = ?"
            params.append(id_tag)
        if unlinked_only:
            sql += " AND session_id IS NULL"
        rows = await self._db.fetchall(sql + " ORDER BY created_at, id", params)
        return [_hold(r) for r in rows]

    async def link_hold(self, hold_id: str, session_id: str) -> Hold:
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE ledger_holds SET session_id = ? WHERE id = ? AND status = 'open' AND session_id IS NULL",
                (session_id, hold_id),
            )
            if changed == 0:
                raise NotFound(f"no open, unlinked hold {hold_id!r}")
            row = await tx.fetchone(f"{_SELECT_HOLD} WHERE id = ?", (hold_id,))
        if row is None:
            raise NotFound(f"no hold {hold_id!r}")
        return _hold(row)


async def _balance(tx: Tx, account_id: str, currency: str) -> Balance:
    rows = await tx.fetchall(
        "SELECT book, SUM(amount_minor) AS total FROM ledger_entries WHERE account_id = ? GROUP BY book", (account_id,)
    )
    totals = {Book(r["book"]): int(r["total"]) for r in rows}
    return Balance(
        currency,
        available_minor=totals.get(Book.WALLET, 0),
        held_minor=totals.get(Book.HELD, 0),
        uncollected_minor=totals.get(Book.UNCOLLECTED, 0),
    )


async def _session_revenue(tx: Tx, account_id: str, session_id: str) -> int:
    total = await tx.fetchval(
        "SELECT COALESCE(SUM(e.amount_minor), 0) FROM ledger_entries e"
        " JOIN ledger_movements m ON m.id = e.movement_id"
        " WHERE m.account_id = ? AND m.session_id = ? AND e.book = ?",
        (account_id, session_id, Book.REVENUE),
    )
    return int(total or 0)


async def _insert_movement(tx: Tx, movement: Movement, after: Balance) -> None:
    seq = await tx.next_value(LEDGER_SEQUENCE)
    await tx.execute(
        insert_sql("ledger_movements", _MOVEMENT_COLUMNS),
        (
            movement.id,
            seq,
            movement.account_id,
            movement.kind,
            movement.currency,
            movement.at,
            movement.hold_id,
            movement.session_id,
            movement.reference,
            movement.memo,
            after.available_minor,
            after.held_minor,
            after.uncollected_minor,
        ),
    )
    await tx.executemany(
        "INSERT INTO ledger_entries (movement_id, line_no, account_id, book, amount_minor) VALUES (?, ?, ?, ?, ?)",
        [(movement.id, i, movement.account_id, e.book, e.amount_minor) for i, e in enumerate(movement.entries)],
    )


async def _replay(tx: Tx, claim: IdempotencyClaim) -> Applied | None:
    row = await tx.fetchone(
        "SELECT request_hash, movement_id FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
        (claim.scope, claim.key),
    )
    if row is None:
        return None
    if row["request_hash"] != claim.request_hash:
        raise IdempotencyConflict(f"Idempotency-Key {claim.key!r} was used with a different request")
    movements = await tx.fetchall("SELECT * FROM ledger_movements WHERE id = ?", (row["movement_id"],))
    (first,) = await _applied(tx, movements)
    holds = []
    if first.movement.hold_id is not None:
        hold = await tx.fetchone(f"{_SELECT_HOLD} WHERE id = ?", (first.movement.hold_id,))
        holds = [_hold(hold)] if hold else []
    return Applied(first.movement, first.balance_after, tuple(holds), replayed=True)


async def _applied(tx: Tx, rows: Sequence[Row]) -> list[Applied]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    marks = ", ".join("?" for _ in ids)
    entries: dict[str, list[Entry]] = {}
    for e in await tx.fetchall(
        f"SELECT movement_id, book, amount_minor FROM ledger_entries WHERE movement_id IN ({marks}) ORDER BY line_no",
        ids,
    ):
        entries.setdefault(e["movement_id"], []).append(Entry(Book(e["book"]), int(e["amount_minor"])))
    out = []
    for r in rows:
        movement = Movement(
            id=r["id"],
            account_id=r["account_id"],
            kind=MovementKind(r["kind"]),
            currency=r["currency"],
            at=r["at"],
            entries=tuple(entries[r["id"]]),
            hold_id=r["hold_id"],
            session_id=r["session_id"],
            reference=r["reference"],
            memo=r["memo"],
        )
        after = Balance(r["currency"], r["available_after_minor"], r["held_after_minor"], r["uncollected_after_minor"])
        out.append(Applied(movement, after))
    return out


class SqlTariffStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, tariff: Tariff) -> None:
        await self._db.execute(
            "INSERT INTO tariffs (id, name, currency, definition) VALUES (?, ?, ?, ?)",
            (tariff.id, tariff.name, tariff.currency, Json(tariff_to_json(tariff))),
        )

    async def get(self, tariff_id: str) -> Tariff | None:
        row = await self._db.fetchone("SELECT definition FROM tariffs WHERE id = ?", (tariff_id,))
        return None if row is None else tariff_from_json(row["definition"])

    async def all(self) -> list[Tariff]:
        rows = await self._db.fetchall("SELECT definition FROM tariffs ORDER BY name, id")
        return [tariff_from_json(r["definition"]) for r in rows]

    async def update(self, tariff: Tariff) -> None:
        sql = "UPDATE tariffs SET name = ?, currency = ?, definition = ? WHERE id = ?"
        if await self._db.execute(sql, (tariff.name, tariff.currency, Json(tariff_to_json(tariff)), tariff.id)) == 0:
            raise NotFound(f"no tariff {tariff.id!r}")

    async def delete(self, tariff_id: str) -> bool:
        async with self._db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM tariff_assignments WHERE tariff_id = ?", (tariff_id,)):
                raise Conflict(f"tariff {tariff_id!r} is assigned; unassign it first")
            return await tx.execute("DELETE FROM tariffs WHERE id = ?", (tariff_id,)) > 0

    async def assign(self, assignment: TariffAssignment) -> None:
        async with self._db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM tariffs WHERE id = ?", (assignment.tariff_id,)) is None:
                raise NotFound(f"no tariff {assignment.tariff_id!r}")
            await tx.execute(
                "INSERT INTO tariff_assignments (scope, scope_id, tariff_id) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, scope_id) DO UPDATE SET tariff_id = excluded.tariff_id",
                (assignment.scope, assignment.scope_id, assignment.tariff_id),
            )

    async def unassign(self, scope: AssignmentScope, scope_id: str) -> bool:
        sql = "DELETE FROM tariff_assignments WHERE scope = ? AND scope_id = ?"
        return await self._db.execute(sql, (scope, scope_id)) > 0

    async def assignments(self) -> list[TariffAssignment]:
        rows = await self._db.fetchall(
            "SELECT scope, scope_id, tariff_id FROM tariff_assignments ORDER BY scope, scope_id"
        )
        return [TariffAssignment(AssignmentScope(r["scope"]), r["scope_id"], r["tariff_id"]) for r in rows]


_COST_COLUMNS = (
    "session_id",
    "station_id",
    "account_id",
    "card_uid",
    "hold_id",
    "currency",
    "total_minor",
    "captured_minor",
    "uncollected_minor",
    "energy_wh",
    "started_at",
    "stopped_at",
    "priced_at",
    "cdr",
)


async def _insert_cost(tx: Tx, cost: SessionCost, rollups: RollupWriter) -> None:
    cdr = cost.cdr
    await tx.execute(
        insert_sql("session_costs", _COST_COLUMNS),
        (
            cost.session_id,
            cost.station_id,
            cost.account_id,
            cost.card_uid,
            cost.hold_id,
            cdr.currency,
            cdr.total.to_minor(),
            cost.captured_minor,
            cost.uncollected_minor,
            cdr.energy_wh,
            cdr.started_at,
            cdr.stopped_at,
            cost.priced_at,
            Json(cdr_to_json(cdr)),
        ),
    )
    await rollups.apply_cost(tx, cost)


class SqlCostStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, cost: SessionCost) -> bool:
        async with self._db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM session_costs WHERE session_id = ?", (cost.session_id,)):
                return False
            await _insert_cost(tx, cost, writer_for(self._db))
            return True

    async def get(self, session_id: str) -> SessionCost | None:
        row = await self._db.fetchone("SELECT * FROM session_costs WHERE session_id = ?", (session_id,))
        return None if row is None else cost_from_row(row)

    async def query(
        self,
        *,
        account_id: str | None = None,
        station_id: str | None = None,
        card_uid: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[SessionCost]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (("account_id", account_id), ("station_id", station_id), ("card_uid", card_uid)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            params.append(until)
        sql = f"SELECT * FROM session_costs WHERE {' AND '.join(clauses)} ORDER BY started_at DESC LIMIT ?"
        return [cost_from_row(r) for r in await self._db.fetchall(sql, (*params, limit))]


class SqlBillingStores:
    """Every billing store over one ``Database`` (implements ``ems.ports.billing.BillingStores``)."""

    def __init__(self, db: Database) -> None:
        self.users = SqlUserStore(db)
        self.ledger = SqlLedgerStore(db)
        self.tariffs = SqlTariffStore(db)
        self.costs = SqlCostStore(db)
