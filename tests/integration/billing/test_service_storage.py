"""The billing service over real storage (both back ends): concurrent duplicate stops charge once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ems.clock import FakeClock
from ems.domain.billing import AssignmentScope, TariffAssignment
from ems.domain.card import Card, CardMode
from ems.domain.money import Money
from ems.domain.session import ChargingSession, Measurand, MeterSample, SessionStatus
from ems.domain.station import Station
from ems.domain.tariff import Tariff
from ems.errors import InvalidInput
from ems.services.billing import BillingPolicy
from ems.services.billing_setup import build_billing
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


async def test_concurrent_duplicate_stops_charge_once(storage: SqlStorage) -> None:
    clock = FakeClock(T0)
    billing = build_billing(storage, clock=clock, policy=BillingPolicy(timezones={"depot": "Europe/Amsterdam"}))
    await storage.stations.add(Station("CP1", site_id="depot"))
    await storage.billing.tariffs.add(Tariff("t", "Std", "EUR", energy_per_kwh=Decimal("0.40")))
    await storage.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "t"))
    _, account = await billing.wallet.create_user("Ada", currency="EUR")
    await billing.wallet.top_up(account.id, Money.of("30.00", "EUR"), idempotency_key="k")
    await storage.cards.add(Card("C1", mode=CardMode.COMMERCIAL, account_id=account.id))
    session = ChargingSession("s1", "CP1", 1, 1, "7", T0, id_tag="C1", meter_start_wh=1000.0)
    await storage.sessions.add(session)
    hold = await billing.service.session_started("s1", station_id="CP1", id_tag="C1")
    assert hold is not None and hold.amount_minor == 3000
    stop = T0 + timedelta(hours=1)
    await storage.samples.add_many(
        [MeterSample("CP1", 1, stop, Measurand.ENERGY_IMPORT_REGISTER, 11_000.0, session_id="s1")]
    )
    await storage.sessions.update(
        replace(session, stopped_at=stop, meter_stop_wh=11_000.0, status=SessionStatus.COMPLETED)
    )
    costs = await asyncio.gather(*(billing.service.session_ended("s1") for _ in range(5)))
    assert {c.cdr.total.as_str() for c in costs} == {"4.00"} and costs[0].captured_minor == 400
    balance = await storage.billing.ledger.balance(account.id)
    assert (balance.available_minor, balance.held_minor) == (2600, 0)
    kinds = [line.movement.kind.value for line in await storage.billing.ledger.statement(account.id)]
    assert kinds == ["capture", "hold", "top_up"]
    assert await billing.service.settle_ended() == []

    # Concurrent refunds of one session never give back more than it was charged (checked under the lock).
    async def refund(i: int) -> bool:
        try:
            await billing.wallet.refund_session("s1", Money.of("1.50", "EUR"), idempotency_key=f"r{i}")
        except InvalidInput:
            return False
        return True

    assert sum(await asyncio.gather(*(refund(i) for i in range(6)))) == 2  # 2 x 1.50 <= 4.00 < 3 x 1.50
    assert (await storage.billing.ledger.balance(account.id)).available_minor == 2600 + 300


async def test_a_user_is_created_with_its_account_or_not_at_all(storage: SqlStorage) -> None:
    billing = build_billing(storage, clock=FakeClock(), policy=BillingPolicy())
    wallet = billing.wallet
    opened = wallet.billing.ledger.open_account

    async def fails(account: object) -> None:
        raise RuntimeError("database went away mid-request")

    wallet.billing.ledger.open_account = fails  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError):
            await wallet.create_user("Ada", currency="EUR")
    finally:
        wallet.billing.ledger.open_account = opened  # type: ignore[method-assign]
    assert await storage.billing.users.all() == [], "no user without an account"
    user, account = await wallet.create_user("Ada", currency="EUR")
    assert account.user_id == user.id
