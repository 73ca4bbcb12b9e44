"""In-memory stand-ins for the ports billing uses, for fast unit tests of the service rules.

The real stores (SQLite, PostgreSQL) are tested against the same behaviour in tests/integration/billing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ems.billing.ledger import check_balance, settled_cost
from ems.domain.billing import Account, Applied, AssignmentScope, IdempotencyClaim, SessionCost, TariffAssignment, User
from ems.domain.card import Card
from ems.domain.commands import CommandResult, CommandStatus, StationCommand
from ems.domain.ledger import AccountState, Balance, Book, Decision, Hold, HoldStatus, Movement
from ems.domain.session import ChargingSession, MeterSample
from ems.domain.station import Station
from ems.domain.tariff import Tariff
from ems.errors import Conflict, IdempotencyConflict, NotFound


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}

    async def add(self, user: User) -> None:
        if user.id in self.rows:
            raise Conflict(user.id)
        self.rows[user.id] = user

    async def get(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def all(self, *, limit: int = 1000) -> list[User]:
        return list(self.rows.values())[:limit]

    async def update(self, user: User) -> None:
        if user.id not in self.rows:
            raise NotFound(user.id)
        self.rows[user.id] = user


class FakeLedger:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.movements: list[Applied] = []
        self.holds: dict[str, Hold] = {}
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.costs: FakeCosts | None = None
        self._lock = asyncio.Lock()

    async def open_account(self, account: Account) -> None:
        if account.id in self.accounts:
            raise Conflict(account.id)
        self.accounts[account.id] = account

    async def account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    async def accounts_for_user(self, user_id: str) -> list[Account]:
        return [a for a in self.accounts.values() if a.user_id == user_id]

    async def balance(self, account_id: str) -> Balance:
        account = self.accounts.get(account_id)
        if account is None:
            raise NotFound(account_id)
        balance = Balance(account.currency)
        for line in self.movements:
            if line.movement.account_id == account_id:
                balance = balance.after(line.movement)
        return balance

    async def apply(
        self,
        account_id: str,
        decide: Callable[[AccountState], Decision],
        *,
        idempotency: IdempotencyClaim | None = None,
        cost: SessionCost | None = None,
        session_id: str | None = None,
    ) -> Applied:
        async with self._lock:
            if idempotency is not None:
                seen = self.keys.get((idempotency.scope, idempotency.key))
                if seen is not None:
                    if seen[0] != idempotency.request_hash:
                        raise IdempotencyConflict(idempotency.key)
                    first = next(m for m in self.movements if m.movement.id == seen[1])
                    return replace(first, replayed=True)
            balance = await self.balance(account_id)
            opened = tuple(h for h in self.holds.values() if h.account_id == account_id and h.status is HoldStatus.OPEN)
            revenue = sum(
                m.movement.on(Book.REVENUE)
                for m in self.movements
                if session_id is not None and (m.movement.account_id, m.movement.session_id) == (account_id, session_id)
            )
            decision = decide(AccountState(account_id, balance, opened, revenue))
            after = balance.after(decision.movement)
            check_balance(after)
            for hold in decision.holds:
                self.holds[hold.id] = hold
            applied = Applied(decision.movement, after, decision.holds)
            self.movements.append(applied)
            if idempotency is not None:
                self.keys[(idempotency.scope, idempotency.key)] = (idempotency.request_hash, decision.movement.id)
            if cost is not None and self.costs is not None:
                await self.costs.add(settled_cost(cost, decision.movement))
            return applied

    async def statement(self, account_id: str, *, limit: int = 100) -> list[Applied]:
        return [m for m in reversed(self.movements) if m.movement.account_id == account_id][:limit]

    async def hold(self, hold_id: str) -> Hold | None:
        return self.holds.get(hold_id)

    async def hold_for_session(self, session_id: str) -> Hold | None:
        return next((h for h in self.holds.values() if h.session_id == session_id), None)

    async def open_holds(self, *, id_tag: str | None = None, unlinked_only: bool = False) -> list[Hold]:
        return [
            h
            for h in self.holds.values()
            if h.status is HoldStatus.OPEN
            and (id_tag is None or h.id_tag == id_tag)
            and not (unlinked_only and h.session_id is not None)
        ]

    async def link_hold(self, hold_id: str, session_id: str) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.OPEN or hold.session_id is not None:
            raise NotFound(hold_id)
        self.holds[hold_id] = replace(hold, session_id=session_id)
        return self.holds[hold_id]

    def all_movements(self) -> list[Movement]:
        return [m.movement for m in self.movements]


class FakeTariffs:
    def __init__(self) -> None:
        self.rows: dict[str, Tariff] = {}
        self.assigned: dict[tuple[AssignmentScope, str], TariffAssignment] = {}

    async def add(self, tariff: Tariff) -> None:
        self.rows[tariff.id] = tariff

    async def get(self, tariff_id: str) -> Tariff | None:
        return self.rows.get(tariff_id)

    async def all(self) -> list[Tariff]:
        return list(self.rows.values())

    async def update(self, tariff: Tariff) -> None:
        self.rows[tariff.id] = tariff

    async def delete(self, tariff_id: str) -> bool:
        return self.rows.pop(tariff_id, None) is not None

    async def assign(self, assignment: TariffAssignment) -> None:
        self.assigned[(assignment.scope, assignment.scope_id)] = assignment

    async def unassign(self, scope: AssignmentScope, scope_id: str) -> bool:
        return self.assigned.pop((scope, scope_id), None) is not None

    async def assignments(self) -> list[TariffAssignment]:
        return list(self.assigned.values())


class FakeCosts:
    def __init__(self) -> None:
        self.rows: dict[str, SessionCost] = {}

    async def add(self, cost: SessionCost) -> bool:
        if cost.session_id in self.rows:
            return False
        self.rows[cost.session_id] = cost
        return True

    async def get(self, session_id: str) -> SessionCost | None:
        return self.rows.get(session_id)

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
        return [
            c
            for c in self.rows.values()
            if (account_id is None or c.account_id == account_id)
            and (station_id is None or c.station_id == station_id)
            and (card_uid is None or c.card_uid == card_uid)
        ][:limit]


@dataclass
class FakeBilling:
    users: FakeUsers = field(default_factory=FakeUsers)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    tariffs: FakeTariffs = field(default_factory=FakeTariffs)
    costs: FakeCosts = field(default_factory=FakeCosts)

    def __post_init__(self) -> None:
        self.ledger.costs = self.costs


class FakeCards:
    def __init__(self, *cards: Card) -> None:
        self.rows = {c.uid: c for c in cards}

    async def add(self, card: Card) -> None:
        self.rows[card.uid] = card

    async def get(self, uid: str) -> Card | None:
        return self.rows.get(uid)

    async def all(self) -> list[Card]:
        return list(self.rows.values())

    async def update(self, card: Card) -> None:
        self.rows[card.uid] = card

    async def delete(self, uid: str) -> bool:
        return self.rows.pop(uid, None) is not None


class FakeSessions:
    def __init__(self) -> None:
        self.rows: dict[str, ChargingSession] = {}

    async def add(self, session: ChargingSession) -> None:
        self.rows[session.id] = session

    async def get(self, session_id: str) -> ChargingSession | None:
        return self.rows.get(session_id)

    async def update(self, session: ChargingSession) -> None:
        self.rows[session.id] = session

    async def find_by_transaction(self, station_id: str, transaction_id: str) -> ChargingSession | None:
        return next(
            (s for s in self.rows.values() if (s.station_id, s.transaction_id) == (station_id, transaction_id)), None
        )

    async def active_for_evse(self, station_id: str, evse_id: int) -> ChargingSession | None:
        return None

    async def query(self, **kw: object) -> list[ChargingSession]:
        return list(self.rows.values())

    async def next_transaction_id(self) -> int:
        return len(self.rows) + 1

    async def finished(
        self, *, since: datetime, id_tag: str | None = None, limit: int = 100_000
    ) -> list[ChargingSession]:
        done = [s for s in self.rows.values() if s.stopped_at is not None and s.started_at >= since]
        done = [s for s in done if id_tag is None or s.id_tag == id_tag]
        return sorted(done, key=lambda s: (s.started_at, s.id), reverse=True)[:limit]


class FakeSamples:
    def __init__(self) -> None:
        self.rows: list[MeterSample] = []

    async def add_many(self, samples: Sequence[MeterSample]) -> None:
        self.rows.extend(samples)

    async def for_session(self, session_id: str) -> list[MeterSample]:
        return [s for s in self.rows if s.session_id == session_id]

    async def count(self) -> int:
        return len(self.rows)

    async def for_station(self, station_id: str, **kw: object) -> list[MeterSample]:
        return [s for s in self.rows if s.station_id == station_id]


class FakeStations:
    def __init__(self, *stations: Station) -> None:
        self.rows = {s.id: s for s in stations}

    async def get(self, station_id: str) -> Station | None:
        return self.rows.get(station_id)


class FakeControl:
    """Answers every command with ``answer``; records what was sent."""

    def __init__(self, answer: CommandStatus = CommandStatus.ACCEPTED) -> None:
        self.answer = answer
        self.sent: list[tuple[str, StationCommand]] = []

    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        self.sent.append((station_id, command))
        return CommandResult(self.answer)

    def is_online(self, station_id: str) -> bool:
        return self.answer is not CommandStatus.OFFLINE
