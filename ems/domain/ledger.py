"""Prepaid-money value types: double-entry movements, holds, balances. Pure values.

Every money movement is a ``Movement``: two or more ``Entry`` lines in integer *minor units*
(cents) that sum to zero. A balance is the sum of its entries; nothing is ever edited in place.
Books, per customer account (sign: positive = money in that book):

* ``WALLET``: the driver's spendable balance. Never below zero.
* ``HELD``: money reserved for a session (a hold); back to ``WALLET`` on release, or to
  ``REVENUE`` on capture.
* ``FUNDING``: where top-ups come from (a payment provider, the operator's till); goes negative.
* ``REVENUE``: what sessions earned. A refund moves money back from here to ``WALLET``.
* ``UNCOLLECTED``: the part of a session's cost neither the hold nor the wallet could cover
  (a session that overran its hold on an empty wallet); negative, the driver's debt, shown
  on the statement and never taken from a later top-up automatically.

The rules that decide movements are in ``ems.billing.ledger``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class Book(StrEnum):
    WALLET = "wallet"
    HELD = "held"
    FUNDING = "funding"
    REVENUE = "revenue"
    UNCOLLECTED = "uncollected"


class MovementKind(StrEnum):
    TOP_UP = "top_up"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Entry:
    book: Book
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Movement:
    """One money movement on one customer account. Invariant: ``sum(entries) == 0``."""

    id: str
    account_id: str
    kind: MovementKind
    currency: str
    at: datetime
    entries: tuple[Entry, ...]
    hold_id: str | None = None
    session_id: str | None = None
    reference: str | None = None
    """An outside reference: a payment provider's event id, a refund reason."""
    memo: str = ""

    def __post_init__(self) -> None:
        if sum(e.amount_minor for e in self.entries) != 0:
            raise ValueError(f"movement {self.id}: entries sum to {sum(e.amount_minor for e in self.entries)}, not 0")
        if len(self.entries) < 2 or any(e.amount_minor == 0 for e in self.entries):
            raise ValueError(f"movement {self.id}: needs two or more non-zero entries")

    def on(self, book: Book) -> int:
        """Net minor units this movement puts into ``book``."""
        return sum(e.amount_minor for e in self.entries if e.book is book)


@dataclass(frozen=True, slots=True)
class Hold:
    """Money reserved for one charge: placed at start, captured (the cost) and released (the rest) at stop."""

    id: str
    account_id: str
    currency: str
    amount_minor: int
    created_at: datetime
    status: HoldStatus = HoldStatus.OPEN
    id_tag: str | None = None
    """The token the station will present (card uid, or the app-start token)."""
    station_id: str | None = None
    evse_id: int | None = None
    session_id: str | None = None
    """Set when the session starts (app starts hold before there is a session)."""
    captured_minor: int = 0
    settled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's books, each the sum of its entries, in minor units."""

    currency: str
    available_minor: int = 0
    held_minor: int = 0
    uncollected_minor: int = 0

    def after(self, movement: Movement) -> Balance:
        return replace(
            self,
            available_minor=self.available_minor + movement.on(Book.WALLET),
            held_minor=self.held_minor + movement.on(Book.HELD),
            uncollected_minor=self.uncollected_minor + movement.on(Book.UNCOLLECTED),
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    """What a rule decides from: the balance and the open holds, read under the account's lock."""

    account_id: str
    balance: Balance
    open_holds: tuple[Hold, ...] = ()
    session_revenue_minor: int = 0
    """For a rule about one session (``LedgerStore.apply(..., session_id=)``): its revenue so far,
    i.e. what it was charged minus what was refunded, read under the same lock."""

    def hold(self, hold_id: str) -> Hold | None:
        return next((h for h in self.open_holds if h.id == hold_id), None)


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule's result: the movement to post and the holds it creates or settles."""

    movement: Movement
    holds: tuple[Hold, ...] = ()
