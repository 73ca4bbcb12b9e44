from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ems.domain.card import Card, CardMode, CardStatus
from ems.errors import Conflict, NotFound
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
FULL = Card(
    uid="04A1B2C3",
    status=CardStatus.BLOCKED,
    expires_at=T0,
    mode=CardMode.COMMERCIAL,
    account_id="acc-1",
    user_id="u-1",
    label="fleet 7",
    created_at=T0,
)


async def test_crud(storage: SqlStorage) -> None:
    await storage.cards.add(FULL)
    await storage.cards.add(Card(uid="01"))
    got = await storage.cards.get(FULL.uid)
    assert got == FULL
    assert got is not None
    assert (type(got.status), type(got.mode)) == (CardStatus, CardMode)
    assert await storage.cards.get("nope") is None
    assert [c.uid for c in await storage.cards.all()] == ["01", FULL.uid]

    unblocked = Card(uid=FULL.uid, label="fleet 8")
    await storage.cards.update(unblocked)
    assert await storage.cards.get(FULL.uid) == unblocked

    assert await storage.cards.delete("01") is True
    assert await storage.cards.delete("01") is False
    assert [c.uid for c in await storage.cards.all()] == [FULL.uid]


async def test_conflict_and_not_found(storage: SqlStorage) -> None:
    await storage.cards.add(FULL)
    with pytest.raises(Conflict):
        await storage.cards.add(Card(uid=FULL.uid))
    with pytest.raises(NotFound):
        await storage.cards.update(Card(uid="missing"))
    assert await storage.cards.get(FULL.uid) == FULL
