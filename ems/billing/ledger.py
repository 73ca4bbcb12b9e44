"""Ledger rules: double-entry movements of prepaid money, decided from an account's state. Pure.

The value types (``Movement``, ``Hold``, ``Balance`` ...) are in ``ems.domain.ledger``.

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

The rules here decide; the store (``ems.ports.billing.LedgerStore.apply``) runs a rule under the
account's lock and writes the result atomically, so concurrent holds cannot overdraw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ems.domain.billing import SessionCost
from ems.domain.ledger import (
    AccountState,
    Balance,
    Book,
    Decision,
    Entry,
    Hold,
    HoldStatus,
    Movement,
    MovementKind,
)
from ems.errors import BillingError, InsufficientFunds, InvalidInput


class HoldNotOpen(BillingError):
    """The hold was captured or released already (a duplicate stop): nothing more to move."""


def check_balance(balance: Balance) -> None:
    """The invariant every write re-checks: no book a driver owns goes negative."""
    if balance.available_minor < 0 or balance.held_minor < 0:
        raise InsufficientFunds(
            f"balance would be {balance.available_minor} available / {balance.held_minor} held minor units"
        )


# ---------------------------------------------------------------- rules


def top_up(
    state: AccountState, *, movement_id: str, amount_minor: int, at: datetime, reference: str | None = None
) -> Decision:
    """Money in from outside: ``FUNDING -> WALLET``."""
    _positive(amount_minor, "top-up")
    entries = (Entry(Book.FUNDING, -amount_minor), Entry(Book.WALLET, amount_minor))
    return Decision(_movement(state, movement_id, MovementKind.TOP_UP, at, entries, reference=reference))


def place_hold(
    state: AccountState,
    *,
    movement_id: str,
    hold: Hold,
    at: datetime,
) -> Decision:
    """Reserve ``hold.amount_minor``: ``WALLET -> HELD``; refused when the wallet cannot cover it."""
    _positive(hold.amount_minor, "hold")
    if hold.amount_minor > state.balance.available_minor:
        raise InsufficientFunds(
            f"available {state.balance.available_minor} minor units do not cover a hold of {hold.amount_minor}"
        )
    entries = (Entry(Book.WALLET, -hold.amount_minor), Entry(Book.HELD, hold.amount_minor))
    movement = _movement(state, movement_id, MovementKind.HOLD, at, entries, hold=hold)
    return Decision(movement, (replace(hold, status=HoldStatus.OPEN),))


def capture(state: AccountState, *, movement_id: str, hold_id: str, cost_minor: int, at: datetime) -> Decision:
    """Settle a hold at the session's cost: the cost to ``REVENUE``, the rest of the hold back to ``WALLET``.

    A cost above the hold takes the excess from the wallet as far as it goes; what is still
    missing is booked ``UNCOLLECTED`` (the wallet never goes below zero).
    """
    hold = _open_hold(state, hold_id)
    if cost_minor < 0:
        raise InvalidInput("a cost cannot be negative", [f"cost_minor: {cost_minor}"])
    excess = max(0, cost_minor - hold.amount_minor)
    from_wallet = min(excess, state.balance.available_minor)
    entries = _nonzero(
        Entry(Book.HELD, -hold.amount_minor),
        Entry(Book.REVENUE, cost_minor),
        Entry(Book.WALLET, hold.amount_minor - cost_minor if excess == 0 else -from_wallet),
        Entry(Book.UNCOLLECTED, -(excess - from_wallet)),
    )
    movement = _movement(state, movement_id, MovementKind.CAPTURE, at, entries, hold=hold)
    return Decision(movement, (replace(hold, status=HoldStatus.CAPTURED, captured_minor=cost_minor, settled_at=at),))


def charge(state: AccountState, *, movement_id: str, session_id: str, cost_minor: int, at: datetime) -> Decision:
    """A prepaid session's cost without a hold (its hold was refused and the session ran on):
    ``REVENUE`` +cost, from the wallet as far as it goes, the rest ``UNCOLLECTED``."""
    _positive(cost_minor, "charge")
    from_wallet = min(cost_minor, state.balance.available_minor)
    entries = _nonzero(
        Entry(Book.REVENUE, cost_minor),
        Entry(Book.WALLET, -from_wallet),
        Entry(Book.UNCOLLECTED, -(cost_minor - from_wallet)),
    )
    movement = _movement(state, movement_id, MovementKind.CAPTURE, at, entries)
    return Decision(replace(movement, session_id=session_id))


def release(state: AccountState, *, movement_id: str, hold_id: str, at: datetime, memo: str = "") -> Decision:
    """Give a whole hold back: ``HELD -> WALLET`` (the station refused, or the session never started)."""
    hold = _open_hold(state, hold_id)
    entries = (Entry(Book.HELD, -hold.amount_minor), Entry(Book.WALLET, hold.amount_minor))
    movement = _movement(state, movement_id, MovementKind.RELEASE, at, entries, hold=hold, memo=memo)
    return Decision(movement, (replace(hold, status=HoldStatus.RELEASED, settled_at=at),))


def refund(
    state: AccountState,
    *,
    movement_id: str,
    amount_minor: int,
    refundable_minor: int,
    at: datetime,
    session_id: str | None = None,
    reference: str | None = None,
) -> Decision:
    """Money back from ``REVENUE`` to ``WALLET``; at most ``refundable_minor`` (captured minus refunded)."""
    _positive(amount_minor, "refund")
    if amount_minor > refundable_minor:
        raise InvalidInput("refund exceeds what was paid", [f"amount: {amount_minor} > refundable {refundable_minor}"])
    entries = (Entry(Book.REVENUE, -amount_minor), Entry(Book.WALLET, amount_minor))
    movement = _movement(state, movement_id, MovementKind.REFUND, at, entries, reference=reference)
    return Decision(replace(movement, session_id=session_id))


def _movement(
    state: AccountState,
    movement_id: str,
    kind: MovementKind,
    at: datetime,
    entries: Sequence[Entry],
    *,
    hold: Hold | None = None,
    reference: str | None = None,
    memo: str = "",
) -> Movement:
    movement = Movement(
        id=movement_id,
        account_id=state.account_id,
        kind=kind,
        currency=state.balance.currency,
        at=at,
        entries=tuple(entries),
        hold_id=hold.id if hold else None,
        session_id=hold.session_id if hold else None,
        reference=reference,
        memo=memo,
    )
    check_balance(state.balance.after(movement))
    return movement


def _open_hold(state: AccountState, hold_id: str) -> Hold:
    hold = state.hold(hold_id)
    if hold is None:
        raise HoldNotOpen(f"hold {hold_id} is not open on account {state.account_id}")
    return hold


def _positive(amount_minor: int, what: str) -> None:
    if amount_minor <= 0:
        raise InvalidInput(f"a {what} must be positive", [f"amount: {amount_minor} minor units"])


def _nonzero(*entries: Entry) -> tuple[Entry, ...]:
    return tuple(e for e in entries if e.amount_minor != 0)


def settled_cost(cost: SessionCost, movement: Movement | None) -> SessionCost:
    """``cost`` with what ``movement`` (its capture) actually took; stores call this when writing both."""
    if movement is None:
        return cost
    uncollected = -movement.on(Book.UNCOLLECTED)
    return replace(
        cost,
        account_id=movement.account_id,
        hold_id=movement.hold_id,
        captured_minor=movement.on(Book.REVENUE) - uncollected,
        uncollected_minor=uncollected,
    )
