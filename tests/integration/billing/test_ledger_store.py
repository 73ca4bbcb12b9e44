"""The billing stores on both back ends: ledger invariants, idempotency, holds, tariffs, costs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from ems.billing.ledger import HoldNotOpen, capture, place_hold, release, top_up
from ems.billing.pricing import price_session
from ems.domain.billing import (
    Account,
    AssignmentScope,
    EnergyReading,
    IdempotencyClaim,
    SessionCost,
    SessionUsage,
    TariffAssignment,
    User,
)
from ems.domain.ledger import Book, Hold, HoldStatus
from ems.domain.tariff import Tariff, TouBand
from ems.errors import Conflict, IdempotencyConflict, InsufficientFunds, NotFound
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


async def _account(storage: SqlStorage, balance_minor: int = 0, account_id: str = "acc1") -> str:
    await storage.billing.users.add(User("u1", "Ada", T0, phone="+31 6 1", email="ada@example.org", group="staff"))
    await storage.billing.ledger.open_account(Account(account_id, "EUR", T0, user_id="u1"))
    if balance_minor:
        await storage.billing.ledger.apply(
            account_id, lambda s: top_up(s, movement_id="m-initial", amount_minor=balance_minor, at=T0)
        )
    return account_id


async def _entries_sum(storage: SqlStorage) -> int:
    row = await storage.db.fetchone("SELECT COALESCE(SUM(amount_minor), 0) AS s FROM ledger_entries")
    assert row is not None
    return int(row["s"])


async def test_users_and_accounts(storage: SqlStorage) -> None:
    await _account(storage)
    user = await storage.billing.users.get("u1")
    assert user == User("u1", "Ada", T0, phone="+31 6 1", email="ada@example.org", group="staff")
    await storage.billing.users.update(User("u1", "Ada L.", T0, phone=None, email=None))
    assert [u.name for u in await storage.billing.users.all()] == ["Ada L."]
    assert await storage.billing.ledger.accounts_for_user("u1") == [Account("acc1", "EUR", T0, user_id="u1")]
    with pytest.raises(Conflict):
        await storage.billing.ledger.open_account(Account("acc1", "EUR", T0))
    with pytest.raises(NotFound):
        await storage.billing.ledger.balance("nope")


async def test_movements_balance_and_statement(storage: SqlStorage) -> None:
    account_id = await _account(storage, 2000)
    hold = Hold("h1", account_id, "EUR", 500, T0, id_tag="CARD1", station_id="CP1")
    applied = await storage.billing.ledger.apply(
        account_id, lambda s: place_hold(s, movement_id="m2", hold=hold, at=T0)
    )
    assert (applied.balance_after.available_minor, applied.balance_after.held_minor) == (1500, 500)
    assert await storage.billing.ledger.open_holds(id_tag="CARD1", unlinked_only=True) == [hold]
    linked = await storage.billing.ledger.link_hold("h1", "s1")
    assert linked.session_id == "s1" and await storage.billing.ledger.hold_for_session("s1") == linked
    with pytest.raises(NotFound):
        await storage.billing.ledger.link_hold("h1", "s2")
    later = T0 + timedelta(hours=1)
    await storage.billing.ledger.apply(
        account_id, lambda s: capture(s, movement_id="m3", hold_id="h1", cost_minor=320, at=later)
    )
    with pytest.raises(HoldNotOpen):
        await storage.billing.ledger.apply(account_id, lambda s: release(s, movement_id="m4", hold_id="h1", at=later))
    settled = await storage.billing.ledger.hold("h1")
    assert settled is not None and (settled.status, settled.captured_minor, settled.settled_at) == (
        HoldStatus.CAPTURED,
        320,
        later,
    )
    balance = await storage.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor) == (1680, 0)
    lines = await storage.billing.ledger.statement(account_id)
    assert [line.movement.id for line in lines] == ["m3", "m2", "m-initial"]
    assert [line.balance_after.available_minor for line in lines] == [1680, 1500, 2000]
    assert lines[0].movement.on(Book.REVENUE) == 320 and lines[0].movement.session_id == "s1"
    assert await _entries_sum(storage) == 0


async def test_a_refused_rule_writes_nothing(storage: SqlStorage) -> None:
    account_id = await _account(storage, 100)
    hold = Hold("h1", account_id, "EUR", 500, T0)
    with pytest.raises(InsufficientFunds):
        await storage.billing.ledger.apply(account_id, lambda s: place_hold(s, movement_id="m2", hold=hold, at=T0))
    assert await storage.billing.ledger.hold("h1") is None
    assert len(await storage.billing.ledger.statement(account_id)) == 1


async def test_idempotent_replay_and_conflict(storage: SqlStorage) -> None:
    account_id = await _account(storage)
    claim = IdempotencyClaim.for_request("top-up:acc1", "key-1", {"amount": "20.00"})
    first = await storage.billing.ledger.apply(
        account_id, lambda s: top_up(s, movement_id="m1", amount_minor=2000, at=T0), idempotency=claim
    )
    again = await storage.billing.ledger.apply(
        account_id, lambda s: top_up(s, movement_id="m2", amount_minor=2000, at=T0), idempotency=claim
    )
    assert again.replayed and again.movement == first.movement and again.balance_after == first.balance_after
    other = IdempotencyClaim.for_request("top-up:acc1", "key-1", {"amount": "25.00"})
    with pytest.raises(IdempotencyConflict):
        await storage.billing.ledger.apply(
            account_id, lambda s: top_up(s, movement_id="m3", amount_minor=2500, at=T0), idempotency=other
        )
    assert (await storage.billing.ledger.balance(account_id)).available_minor == 2000


async def test_concurrent_holds_never_overdraw(storage: SqlStorage) -> None:
    account_id = await _account(storage, 1000)

    async def attempt(i: int) -> bool:
        hold = Hold(f"h{i}", account_id, "EUR", 100, T0)
        try:
            await storage.billing.ledger.apply(
                account_id, lambda s: place_hold(s, movement_id=f"m{i}", hold=hold, at=T0)
            )
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(25)))
    assert sum(results) == 10
    balance = await storage.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor) == (0, 1000)
    assert await _entries_sum(storage) == 0


async def test_tariffs_and_assignments(storage: SqlStorage) -> None:
    tariff = Tariff(
        "std",
        "Standard",
        "EUR",
        energy_per_kwh=Decimal("0.2975"),
        session_fee=Decimal("1.00"),
        idle_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        tou=(TouBand("night", time(23), time(6, 30), frozenset({0, 1}), energy_per_kwh=Decimal("0.20")),),
        min_price=Decimal("0.50"),
        vat_percent=Decimal("21"),
    )
    await storage.billing.tariffs.add(tariff)
    assert await storage.billing.tariffs.get("std") == tariff
    await storage.billing.tariffs.update(Tariff("std", "Renamed", "EUR"))
    assert [t.name for t in await storage.billing.tariffs.all()] == ["Renamed"]
    with pytest.raises(NotFound):
        await storage.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "nope"))
    await storage.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "std"))
    await storage.billing.tariffs.add(Tariff("staff", "Staff", "EUR"))
    await storage.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "staff"))
    assert await storage.billing.tariffs.assignments() == [TariffAssignment(AssignmentScope.SITE, "depot", "staff")]
    with pytest.raises(Conflict):
        await storage.billing.tariffs.delete("staff")
    assert await storage.billing.tariffs.unassign(AssignmentScope.SITE, "depot")
    assert await storage.billing.tariffs.delete("staff")


async def test_session_costs_are_recorded_once(storage: SqlStorage) -> None:
    tariff = Tariff("std", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), vat_percent=Decimal("21"))
    usage = SessionUsage(
        T0,
        T0 + timedelta(hours=1),
        (EnergyReading(T0, Decimal(0)), EnergyReading(T0 + timedelta(hours=1), Decimal(7000))),
    )
    cdr = price_session(tariff, usage, "Europe/Amsterdam")
    cost = SessionCost("s1", "CP1", cdr, T0 + timedelta(hours=1), card_uid="PERS1")
    assert await storage.billing.costs.add(cost)
    assert not await storage.billing.costs.add(cost)
    assert await storage.billing.costs.get("s1") == cost
    assert await storage.billing.costs.query(station_id="CP1", since=T0, until=T0 + timedelta(days=1)) == [cost]
    assert await storage.billing.costs.query(account_id="nobody") == []
