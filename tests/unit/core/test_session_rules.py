"""The session rules, one rule at a time (the property tests in tests/unit/ocpp cover arbitrary sequences)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ems.domain.events import SessionEnded, SessionStarted
from ems.domain.session import Measurand, MeterSample, SessionStatus
from ems.domain.session_rules import SUPERSEDED, Note, SessionBook
from ems.domain.transaction import TxKind, TxUpdate

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _reg(wh: float, at: datetime) -> MeterSample:
    return MeterSample("cp", 1, at, Measurand.ENERGY_IMPORT_REGISTER, wh)


def _tx(kind: TxKind, tx: str | None, at: datetime, **kw: object) -> TxUpdate:
    return TxUpdate(kind=kind, station_id="cp", at=at, transaction_id=tx, evse_id=kw.pop("evse_id", 1), **kw)  # type: ignore[arg-type]


def test_start_update_stop() -> None:
    book = SessionBook()
    start = book.apply(_tx(TxKind.STARTED, "1", T0, meter_wh=1000.0, id_tag="A"), new_session_id="s1")
    assert [s.id for s in start.new] == ["s1"] and isinstance(start.events[0], SessionStarted)
    book.apply(_tx(TxKind.UPDATED, None, T0 + timedelta(minutes=10), samples=(_reg(3000, T0),)), new_session_id="x")
    stop = book.apply(
        _tx(TxKind.ENDED, "1", T0 + timedelta(minutes=20), meter_wh=4000.0, reason="EVDisconnected"), new_session_id="x"
    )
    [ended] = stop.changed
    assert (ended.status, ended.energy_wh, ended.stop_reason) == (SessionStatus.COMPLETED, 3000.0, "EVDisconnected")
    again = book.apply(_tx(TxKind.ENDED, "1", T0 + timedelta(minutes=21), meter_wh=5000.0), new_session_id="x")
    assert again.notes == [Note.DUPLICATE_STOP] and not again.changed
    late = book.apply(
        _tx(TxKind.UPDATED, "1", T0 + timedelta(minutes=22), samples=(_reg(4500, T0),)), new_session_id="x"
    )
    assert late.notes == [Note.LATE_READING] and [s.session_id for s in late.samples] == ["s1"] and not late.changed


def test_a_duplicate_start_changes_nothing() -> None:
    book = SessionBook()
    book.apply(_tx(TxKind.STARTED, "1", T0), new_session_id="s1")
    out = book.apply(_tx(TxKind.STARTED, "1", T0), new_session_id="s2")
    assert out.notes == [Note.DUPLICATE_START] and not out.new and not out.events


def test_a_new_transaction_on_a_busy_evse_ends_the_stale_one() -> None:
    book = SessionBook()
    book.apply(_tx(TxKind.STARTED, "1", T0, meter_wh=0.0), new_session_id="s1")
    book.apply(_tx(TxKind.UPDATED, "1", T0 + timedelta(minutes=5), samples=(_reg(700, T0),)), new_session_id="x")
    out = book.apply(_tx(TxKind.STARTED, "2", T0 + timedelta(hours=1)), new_session_id="s2")
    [stale] = out.changed
    assert (stale.id, stale.status, stale.stop_reason, stale.stopped_at) == (
        "s1",
        SessionStatus.COMPLETED,
        SUPERSEDED,
        T0 + timedelta(hours=1),
    )
    assert [type(e) for e in out.events] == [SessionEnded, SessionStarted]
    assert Note.SUPERSEDED in out.notes and book.open_on("cp", 1) is not None
    assert book.open_on("cp", 1).session.id == "s2"  # type: ignore[union-attr]


def test_a_stop_is_never_before_its_start() -> None:
    """A station clock ahead at the start (kept: within 5 min) and corrected at the stop."""
    book = SessionBook()
    book.apply(_tx(TxKind.STARTED, "1", T0 + timedelta(minutes=4)), new_session_id="s1")
    out = book.apply(_tx(TxKind.ENDED, "1", T0 + timedelta(minutes=1)), new_session_id="x")
    [ended] = out.changed
    assert ended.stopped_at == ended.started_at and Note.STOP_BEFORE_START in out.notes
    assert ended.stop_reason == "Local"


def test_the_201_implicit_start_needs_an_accepted_id_token() -> None:
    book = SessionBook()
    bare = book.apply(_tx(TxKind.UPDATED, "tx-9", T0, samples=(_reg(10, T0),)), new_session_id="s1")
    assert not bare.new and bare.notes == [Note.UNKNOWN_TRANSACTION] and bare.samples[0].session_id is None
    refused = book.apply(_tx(TxKind.UPDATED, "tx-9", T0, id_tag="BAD", authorized=False), new_session_id="s1")
    assert not refused.new and refused.notes == [Note.IMPLICIT_START_REFUSED]
    ok = book.apply(_tx(TxKind.UPDATED, "tx-9", T0, id_tag="GOOD", authorized=True), new_session_id="s1")
    assert [s.id_tag for s in ok.new] == ["GOOD"] and ok.notes == [Note.IMPLICIT_START]


def test_energy_never_goes_backwards_and_the_first_reading_is_the_start_without_a_start_meter() -> None:
    book = SessionBook()
    book.apply(_tx(TxKind.STARTED, "1", T0), new_session_id="s1")
    energies = []
    for i, wh in enumerate([5000, 5600, 5200, 6000]):
        at = T0 + timedelta(minutes=i + 1)
        out = book.apply(_tx(TxKind.UPDATED, "1", at, samples=(_reg(wh, at),)), new_session_id="x")
        energies.append(out.changed[0].energy_wh)
    assert energies == [0.0, 600.0, 600.0, 1000.0]


def test_a_failed_apply_leaves_the_book_unchanged() -> None:
    book = SessionBook()
    book.apply(_tx(TxKind.STARTED, "1", T0), new_session_id="s1")
    before = book.sessions()
    with pytest.raises(AssertionError):  # a start without a transaction id: the applier quarantines it
        book.apply(_tx(TxKind.STARTED, None, T0, evse_id=2), new_session_id="s2")
    assert book.sessions() == before and book.open_on("cp", 2) is None
