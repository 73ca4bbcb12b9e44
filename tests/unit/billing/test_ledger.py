from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.billing.ledger import HoldNotOpen, capture, place_hold, refund, release, top_up
from ems.domain.ledger import AccountState, Balance, Book, Entry, Hold, HoldStatus, Movement, MovementKind
from ems.errors import InsufficientFunds, InvalidInput
from tests.examples import examples

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _state(available: int, held: int = 0, holds: tuple[Hold, ...] = ()) -> AccountState:
    return AccountState("acc", Balance("EUR", available, held), holds)


def _hold(amount: int, hold_id: str = "h1") -> Hold:
    return Hold(hold_id, "acc", "EUR", amount, AT, session_id="s1")


def test_a_movement_must_balance() -> None:
    with pytest.raises(ValueError, match="sum to 5"):
        Movement("m", "acc", MovementKind.TOP_UP, "EUR", AT, (Entry(Book.WALLET, 10), Entry(Book.FUNDING, -5)))
    with pytest.raises(ValueError, match="two or more"):
        Movement("m", "acc", MovementKind.TOP_UP, "EUR", AT, (Entry(Book.WALLET, 0), Entry(Book.FUNDING, 0)))


def test_top_up_hold_capture_release() -> None:
    state = _state(0)
    up = top_up(state, movement_id="m1", amount_minor=2000, at=AT).movement
    assert (up.on(Book.WALLET), up.on(Book.FUNDING)) == (2000, -2000)
    state = _state(2000)
    held = place_hold(state, movement_id="m2", hold=_hold(500), at=AT)
    assert (held.movement.on(Book.WALLET), held.movement.on(Book.HELD)) == (-500, 500)
    state = _state(1500, 500, held.holds)
    captured = capture(state, movement_id="m3", hold_id="h1", cost_minor=320, at=AT)
    assert captured.movement.on(Book.REVENUE) == 320
    assert captured.movement.on(Book.WALLET) == 180
    assert captured.movement.on(Book.HELD) == -500
    assert captured.holds[0].status is HoldStatus.CAPTURED and captured.holds[0].captured_minor == 320
    released = release(state, movement_id="m4", hold_id="h1", at=AT)
    assert released.movement.on(Book.WALLET) == 500 and released.holds[0].status is HoldStatus.RELEASED


def test_a_hold_cannot_exceed_the_available_balance() -> None:
    with pytest.raises(InsufficientFunds):
        place_hold(_state(499), movement_id="m", hold=_hold(500), at=AT)


def test_cost_above_the_hold_takes_the_wallet_then_books_the_rest_uncollected() -> None:
    state = _state(100, 500, (_hold(500),))
    decision = capture(state, movement_id="m", hold_id="h1", cost_minor=750, at=AT)
    m = decision.movement
    assert (m.on(Book.HELD), m.on(Book.WALLET), m.on(Book.REVENUE), m.on(Book.UNCOLLECTED)) == (-500, -100, 750, -150)


def test_a_settled_hold_cannot_be_settled_again() -> None:
    with pytest.raises(HoldNotOpen):
        capture(_state(0), movement_id="m", hold_id="h1", cost_minor=1, at=AT)


def test_bad_amounts_are_refused() -> None:
    with pytest.raises(InvalidInput):
        top_up(_state(0), movement_id="m", amount_minor=0, at=AT)
    with pytest.raises(InvalidInput):
        refund(_state(0), movement_id="m", amount_minor=200, refundable_minor=100, at=AT)


ops = st.lists(
    st.tuples(st.sampled_from(["top_up", "hold", "capture", "release", "refund"]), st.integers(1, 5000)),
    max_size=40,
)


@settings(max_examples=examples(200), deadline=None)
@given(ops)
def test_any_sequence_of_operations_keeps_the_books_balanced(sequence: list[tuple[str, int]]) -> None:
    balance, holds, movements, revenue = Balance("EUR"), {}, [], 0
    for i, (op, amount) in enumerate(sequence):
        state = AccountState("acc", balance, tuple(h for h in holds.values() if h.status is HoldStatus.OPEN))
        try:
            if op == "top_up":
                decision = top_up(state, movement_id=f"m{i}", amount_minor=amount, at=AT)
            elif op == "hold":
                decision = place_hold(state, movement_id=f"m{i}", hold=_hold(amount, f"h{i}"), at=AT)
            elif op in ("capture", "release") and state.open_holds:
                target = state.open_holds[amount % len(state.open_holds)].id
                if op == "capture":
                    decision = capture(state, movement_id=f"m{i}", hold_id=target, cost_minor=amount * 2 // 3, at=AT)
                else:
                    decision = release(state, movement_id=f"m{i}", hold_id=target, at=AT)
            elif op == "refund":
                decision = refund(state, movement_id=f"m{i}", amount_minor=amount, refundable_minor=revenue, at=AT)
            else:
                continue
        except (InsufficientFunds, InvalidInput):
            continue
        movements.append(decision.movement)
        balance = balance.after(decision.movement)
        revenue += decision.movement.on(Book.REVENUE)
        holds.update({h.id: h for h in decision.holds})
        assert balance.available_minor >= 0 and balance.held_minor >= 0
        assert balance.held_minor == sum(h.amount_minor for h in holds.values() if h.status is HoldStatus.OPEN)
    assert sum(e.amount_minor for m in movements for e in m.entries) == 0
    assert balance.available_minor == sum(m.on(Book.WALLET) for m in movements)
