from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from ems.clock import FakeClock
from ems.domain.billing import AssignmentScope, TariffAssignment
from ems.domain.card import AuthorizationStatus, Card, CardMode, CardStatus
from ems.domain.commands import CommandStatus, RemoteStart, RemoteStop
from ems.domain.ledger import Book, HoldStatus
from ems.domain.money import Money
from ems.domain.session import ChargingSession, Measurand, MeterSample, SessionStatus
from ems.domain.station import Station
from ems.domain.tariff import Tariff
from ems.errors import IdempotencyConflict, InsufficientFunds, InvalidInput
from ems.services.billing import BillingPolicy, BillingService
from ems.services.charge import PayBeforeStart
from ems.services.wallet import PaymentEvent, Wallet
from tests.unit.billing.fakes import FakeBilling, FakeCards, FakeControl, FakeSamples, FakeSessions, FakeStations

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
TARIFF = Tariff("std", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), session_fee=Decimal("1.00"))


class World:
    def __init__(self, answer: CommandStatus = CommandStatus.ACCEPTED) -> None:
        ids = count(1)
        self.clock = FakeClock(T0)
        self.billing = FakeBilling()
        self.cards = FakeCards()
        self.sessions = FakeSessions()
        self.samples = FakeSamples()
        self.control = FakeControl(answer)
        self.service = BillingService(
            billing=self.billing,
            cards=self.cards,
            sessions=self.sessions,
            samples=self.samples,
            stations=FakeStations(Station("CP1", site_id="depot")),  # type: ignore[arg-type]
            control=self.control,
            clock=self.clock,
            policy=BillingPolicy(timezones={"depot": "Europe/Amsterdam"}),
            ids=lambda: f"{next(ids):032x}",
        )
        self.wallet = Wallet(self.billing, self.clock, self.service.ids)
        self.app = PayBeforeStart(self.service)

    async def setup(self, balance: str = "20.00") -> str:
        await self.billing.tariffs.add(TARIFF)
        await self.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, "depot", "std"))
        _, account = await self.wallet.create_user("Ada", currency="EUR", phone="+31 6 1234")
        if Decimal(balance) > 0:
            await self.wallet.top_up(account.id, Money.of(balance, "EUR"), idempotency_key="k0")
        await self.cards.add(Card("CARD1", mode=CardMode.COMMERCIAL, account_id=account.id))
        await self.cards.add(Card("PERS1", mode=CardMode.PERSONAL))
        return account.id

    async def run_session(self, session_id: str, id_tag: str, energy_wh: float, minutes: int = 60) -> None:
        start = self.clock.now()
        session = ChargingSession(session_id, "CP1", 1, 1, f"tx-{session_id}", start, id_tag=id_tag, meter_start_wh=0.0)
        await self.sessions.add(session)
        await self.service.session_started(session_id, station_id="CP1", id_tag=id_tag)
        self.clock.advance(minutes * 60)
        stop = self.clock.now()
        await self.samples.add_many(
            [MeterSample("CP1", 1, stop, Measurand.ENERGY_IMPORT_REGISTER, energy_wh, session_id=session_id)]
        )
        await self.sessions.update(
            replace(
                session, stopped_at=stop, meter_stop_wh=energy_wh, energy_wh=energy_wh, status=SessionStatus.COMPLETED
            )
        )


async def test_authorize_decides_from_card_and_balance() -> None:
    world = World()
    account_id = await world.setup(balance="4.00")
    auth = world.service.authorize
    assert (await auth("NOPE", station_id="CP1")).status is AuthorizationStatus.INVALID
    assert (await auth("PERS1", station_id="CP1")).status is AuthorizationStatus.ACCEPTED
    poor = await auth("CARD1", station_id="CP1")
    assert poor.status is AuthorizationStatus.NO_CREDIT
    assert poor.reason == "balance 4.00 EUR is below the 5.00 EUR needed to start; please top up"
    await world.wallet.top_up(account_id, Money.of("1.00", "EUR"))
    assert (await auth("CARD1", station_id="CP1")).status is AuthorizationStatus.ACCEPTED
    await world.cards.update(Card("CARD1", status=CardStatus.BLOCKED, mode=CardMode.COMMERCIAL, account_id=account_id))
    blocked = await auth("CARD1", station_id="CP1")
    assert (blocked.status, blocked.reason) == (AuthorizationStatus.BLOCKED, "this card is blocked")
    await world.cards.update(Card("CARD1", expires_at=T0, mode=CardMode.COMMERCIAL, account_id=account_id))
    assert (await auth("CARD1", station_id="CP1")).status is AuthorizationStatus.EXPIRED


async def test_a_prepaid_session_holds_then_captures_the_exact_cost_once() -> None:
    world = World()
    account_id = await world.setup(balance="20.00")
    await world.run_session("s1", "CARD1", energy_wh=12_345)
    assert (await world.billing.ledger.balance(account_id)).held_minor == 2000  # whole balance, below max_hold
    cost = await world.service.session_ended("s1")
    # 1.00 fee + 12.345 kWh * 0.30 = 3.7035 -> 3.70
    assert cost.cdr.total == Money.of("4.70", "EUR") and cost.captured_minor == 470
    again = await world.service.session_ended("s1")
    assert again == cost
    balance = await world.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor) == (1530, 0)
    assert sum(e.amount_minor for m in world.billing.ledger.all_movements() for e in m.entries) == 0


async def test_a_personal_card_is_priced_but_not_billed() -> None:
    world = World()
    account_id = await world.setup()
    await world.run_session("s1", "PERS1", energy_wh=10_000)
    cost = await world.service.session_ended("s1")
    assert cost.account_id is None and cost.cdr.total == Money.of("4.00", "EUR")
    assert (await world.billing.ledger.balance(account_id)).available_minor == 2000


async def test_a_session_started_without_enough_balance_is_stopped() -> None:
    world = World()
    account_id = await world.setup(balance="20.00")
    # The balance is spent elsewhere between Authorize and StartTransaction.
    await world.app.start(station_id="CP1", evse_id=2, account_id=account_id)
    await world.run_session("s1", "CARD1", energy_wh=2000)
    assert world.control.sent[-1] == ("CP1", RemoteStop(transaction_id="tx-s1"))
    # It drew 2 kWh before stopping: still charged (1.00 + 0.60), and with an empty wallet, owed.
    cost = await world.service.session_ended("s1")
    assert (cost.account_id, cost.captured_minor, cost.uncollected_minor) == (account_id, 0, 160)
    assert await world.service.session_ended("s1") == cost
    balance = await world.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor, balance.uncollected_minor) == (0, 2000, -160)


async def test_accrued_cost_reaching_the_hold_stops_the_session_once() -> None:
    world = World()
    account_id = await world.setup(balance="6.00")
    session = ChargingSession("s1", "CP1", 1, 1, "tx1", T0, id_tag="CARD1", meter_start_wh=0.0)
    await world.sessions.add(session)
    hold = await world.service.session_started("s1", station_id="CP1", id_tag="CARD1")
    assert hold is not None and hold.amount_minor == 600 and hold.account_id == account_id
    sample = MeterSample(
        "CP1", 1, T0 + timedelta(minutes=30), Measurand.ENERGY_IMPORT_REGISTER, 10_000.0, session_id="s1"
    )
    await world.samples.add_many([sample])
    world.clock.advance(1800)
    assert not await world.service.watch_accrued("s1")  # 1.00 + 3.00 = 4.00 < 6.00
    world.clock.advance(1800)
    sample = replace(sample, measured_at=world.clock.now(), value=17_000.0)
    await world.samples.add_many([sample])
    assert await world.service.watch_accrued("s1")  # 1.00 + 5.10 = 6.10 >= 6.00
    assert not await world.service.watch_accrued("s1")
    assert [c for _, c in world.control.sent] == [RemoteStop(transaction_id="tx1")]
    await world.sessions.update(replace(session, stopped_at=world.clock.now(), meter_stop_wh=17_000.0))
    cost = await world.service.session_ended("s1")
    assert (cost.captured_minor, cost.uncollected_minor) == (600, 10)  # the wallet was empty
    balance = await world.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor, balance.uncollected_minor) == (0, 0, -10)


async def test_top_up_idempotency_and_validation() -> None:
    world = World()
    account_id = await world.setup(balance="0")
    first = await world.wallet.top_up(account_id, Money.of("20.00", "EUR"), idempotency_key="abc")
    replay = await world.wallet.top_up(account_id, Money.of("20.00", "EUR"), idempotency_key="abc")
    assert replay.replayed and replay.movement == first.movement and replay.balance_after == first.balance_after
    with pytest.raises(IdempotencyConflict):
        await world.wallet.top_up(account_id, Money.of("25.00", "EUR"), idempotency_key="abc")
    for bad in (Money.of("0", "EUR"), Money.of("-5", "EUR"), Money.of("5", "USD"), Money.of("1.001", "EUR")):
        with pytest.raises(InvalidInput):
            await world.wallet.top_up(account_id, bad, idempotency_key=f"k-{bad}")
    assert (await world.billing.ledger.balance(account_id)).available_minor == 2000


async def test_payment_events_credit_once() -> None:
    world = World()
    account_id = await world.setup(balance="0")
    event = PaymentEvent("acme-pay", "evt_1", account_id, Money.of("10.00", "EUR"))
    await world.wallet.credit_payment(event)
    assert (await world.wallet.credit_payment(event)).replayed
    assert (await world.billing.ledger.balance(account_id)).available_minor == 1000


async def test_refunds_are_bounded_by_what_was_paid() -> None:
    world = World()
    account_id = await world.setup()
    await world.run_session("s1", "CARD1", energy_wh=10_000)
    await world.service.session_ended("s1")
    await world.wallet.refund_session("s1", Money.of("1.00", "EUR"))
    with pytest.raises(InvalidInput):
        await world.wallet.refund_session("s1", Money.of("3.01", "EUR"))
    assert (await world.billing.ledger.balance(account_id)).available_minor == 2000 - 400 + 100


async def test_pay_before_start_holds_before_sending_and_links_the_session() -> None:
    world = World()
    account_id = await world.setup()
    seen_balance: list[int] = []

    async def execute(station_id: str, command: object) -> object:
        seen_balance.append((await world.billing.ledger.balance(account_id)).held_minor)
        return await FakeControl.execute(world.control, station_id, command)  # type: ignore[arg-type]

    world.control.execute = execute  # type: ignore[method-assign]
    started = await world.app.start(station_id="CP1", evse_id=1, account_id=account_id)
    assert started.status is CommandStatus.ACCEPTED and seen_balance == [2000]
    command = world.control.sent[0][1]
    assert isinstance(command, RemoteStart) and command.id_tag == started.id_tag and len(started.id_tag) <= 20
    assert (await world.service.authorize(started.id_tag, station_id="CP1")).status is AuthorizationStatus.ACCEPTED
    assert (await world.app.state(started.charge_id)).state == "pending"
    await world.run_session("s9", started.id_tag, energy_wh=5_000)
    assert (await world.app.state(started.charge_id)).session_id == "s9"
    cost = await world.service.session_ended("s9")
    assert cost.cdr.total == Money.of("2.50", "EUR")
    assert (await world.app.state(started.charge_id)).state == "completed"
    assert (await world.billing.ledger.balance(account_id)).available_minor == 1750


@pytest.mark.parametrize("answer", [CommandStatus.REJECTED, CommandStatus.TIMEOUT, CommandStatus.OFFLINE])
async def test_pay_before_start_releases_the_hold_when_the_station_does_not_start(answer: CommandStatus) -> None:
    world = World(answer)
    account_id = await world.setup()
    started = await world.app.start(station_id="CP1", evse_id=1, account_id=account_id)
    assert started.status is answer and started.hold.status is HoldStatus.RELEASED and started.detail
    balance = await world.billing.ledger.balance(account_id)
    assert (balance.available_minor, balance.held_minor) == (2000, 0)


async def test_pay_before_start_refuses_without_funds_and_releases_stale_starts() -> None:
    world = World()
    account_id = await world.setup(balance="3.00")
    with pytest.raises(InsufficientFunds, match=r"below the 5\.00 EUR"):
        await world.app.start(station_id="CP1", evse_id=1, account_id=account_id)
    assert world.control.sent == []
    await world.wallet.top_up(account_id, Money.of("10.00", "EUR"))
    started = await world.app.start(station_id="CP1", evse_id=1, card_uid="CARD1")
    world.clock.advance(179)
    assert await world.app.release_stale() == []
    world.clock.advance(1)
    assert await world.app.release_stale() == [started.charge_id]
    assert (await world.billing.ledger.balance(account_id)).available_minor == 1300
    movements = world.billing.ledger.all_movements()
    assert [m.on(Book.WALLET) for m in movements[-2:]] == [-1300, 1300]


async def test_stopping_a_pending_charge_cancels_it() -> None:
    world = World()
    account_id = await world.setup()
    started = await world.app.start(station_id="CP1", evse_id=1, account_id=account_id)
    result = await world.app.stop(started.charge_id)
    assert result.ok and (await world.app.state(started.charge_id)).state == "cancelled"
    assert (await world.billing.ledger.balance(account_id)).available_minor == 2000


async def test_the_accrued_cost_watch_is_throttled_per_session() -> None:
    world = World()
    await world.setup(balance="6.00")
    await world.sessions.add(ChargingSession("s1", "CP1", 1, 1, "tx1", T0, id_tag="CARD1", meter_start_wh=0.0))
    await world.service.session_started("s1", station_id="CP1", id_tag="CARD1")
    energy = Measurand.ENERGY_IMPORT_REGISTER
    assert not await world.service.watch_accrued("s1")
    world.clock.advance(10)
    await world.samples.add_many([MeterSample("CP1", 1, world.clock.now(), energy, 20_000.0, session_id="s1")])
    assert not await world.service.watch_accrued("s1")  # over the hold, but checked 10 s ago
    world.clock.advance(20)
    assert await world.service.watch_accrued("s1")


async def test_an_app_token_stays_accepted_while_its_session_runs() -> None:
    world = World()
    account_id = await world.setup()
    started = await world.app.start(station_id="CP1", evse_id=1, account_id=account_id)
    await world.sessions.add(ChargingSession("s1", "CP1", 1, 1, "tx1", T0, id_tag=started.id_tag))
    await world.service.session_started("s1", station_id="CP1", id_tag=started.id_tag)
    assert (await world.service.authorize(started.id_tag, station_id="CP1")).status is AuthorizationStatus.ACCEPTED
    assert (await world.service.authorize(started.id_tag, station_id="CP2")).status is AuthorizationStatus.INVALID
