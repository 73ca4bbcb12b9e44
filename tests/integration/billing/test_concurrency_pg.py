"""Concurrent holds on one account against the real PostgreSQL: several processes' worth of
connection pools race to hold; the row lock (SELECT ... FOR UPDATE) means none overdraws."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ems.billing.ledger import place_hold, top_up
from ems.config import Settings
from ems.domain.billing import Account
from ems.domain.ledger import Hold
from ems.errors import InsufficientFunds
from ems.storage.factory import SqlStorage, open_storage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
POOLS = 4
ATTEMPTS = 120
"""120 attempts of 0.70 on 25.00 across 4 pools of up to 10 connections: 35 fit, 85 must be refused."""


@pytest.mark.postgres
@pytest.mark.slow
async def test_many_concurrent_holds_on_one_account_never_overdraw(pg_schema_url: str) -> None:
    stores: list[SqlStorage] = [await open_storage(Settings(database_url=pg_schema_url))]
    stores += [await open_storage(Settings(database_url=pg_schema_url), migrate=False) for _ in range(POOLS - 1)]
    try:
        ledger = stores[0].billing.ledger
        await ledger.open_account(Account("acc", "EUR", T0))
        await ledger.apply("acc", lambda s: top_up(s, movement_id="topup", amount_minor=2500, at=T0))

        async def attempt(i: int) -> bool:
            hold = Hold(f"h{i}", "acc", "EUR", 70, T0)
            store = stores[i % POOLS].billing.ledger
            try:
                await store.apply("acc", lambda s: place_hold(s, movement_id=f"m{i}", hold=hold, at=T0))
            except InsufficientFunds:
                return False
            return True

        results = await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS)))
        balance = await ledger.balance("acc")
        assert sum(results) == 2500 // 70
        assert (balance.available_minor, balance.held_minor) == (2500 - 70 * sum(results), 70 * sum(results))
        # Every statement line shows a non-negative balance after it: no interleaving ever overdrew.
        lines = await ledger.statement("acc", limit=1000)
        assert len(lines) == 1 + sum(results)
        assert all(line.balance_after.available_minor >= 0 for line in lines)
        row = await stores[0].db.fetchone("SELECT SUM(amount_minor) AS s FROM ledger_entries")
        assert row is not None and int(row["s"]) == 0
    finally:
        for store in stores:
            await store.close()
