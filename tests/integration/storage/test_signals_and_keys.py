from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ems.domain.access import ApiKey, Role
from ems.domain.capacity import CapacityBlock, CapacitySignal, CapacityUnit, SignalKind, SignalSource
from ems.domain.units import Phase
from ems.errors import Conflict
from ems.storage.factory import SqlStorage

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _signal(site: str, minutes: int, **kw: object) -> CapacitySignal:
    return CapacitySignal(
        site_id=site,
        kind=SignalKind.LIMIT,
        blocks=(CapacityBlock(T0, T0 + timedelta(hours=1), 50_000.0),),
        received_at=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


async def test_signals_audit_newest_first(storage: SqlStorage) -> None:
    cest = timezone(timedelta(hours=2))
    forecast = CapacitySignal(
        site_id="depot",
        kind=SignalKind.FORECAST,
        blocks=(
            CapacityBlock(T0, T0 + timedelta(minutes=15), 32.0, CapacityUnit.A, Phase.L1),
            CapacityBlock(
                datetime(2026, 11, 21, 10, 15, tzinfo=cest), T0 + timedelta(minutes=30), 11.5, CapacityUnit.KW
            ),
        ),
        received_at=T0,
        circuit_id="feeder-a",
        message_id="m-1",
        source=SignalSource.MQTT,
    )
    first = await storage.signals.add(forecast, accepted=True)
    second = await storage.signals.add(_signal("depot", 5), accepted=False, error="capacity below zero")
    await storage.signals.add(_signal("elsewhere", 1), accepted=True)
    assert second > first

    history = await storage.signals.for_site("depot")
    assert history == [(_signal("depot", 5), False, "capacity below zero"), (forecast, True, None)]
    block = history[1][0].blocks[0]
    assert (type(block.unit), type(block.phase)) == (CapacityUnit, Phase)
    assert await storage.signals.for_site("depot", limit=1) == [history[0]]
    assert await storage.signals.for_site("nowhere") == []


def _key(n: int, role: Role = Role.OPERATOR, user_id: str | None = None) -> ApiKey:
    return ApiKey(id=f"k{n}", name=f"key {n}", role=role, key_hash=f"{n:064x}", created_at=T0, user_id=user_id)


async def test_api_keys_add_find_revoke(storage: SqlStorage) -> None:
    driver = _key(1, role=Role.DRIVER, user_id="u-1")
    await storage.api_keys.add(driver)
    await storage.api_keys.add(_key(2))
    assert await storage.api_keys.by_hash(driver.key_hash) == driver
    assert await storage.api_keys.by_hash("0" * 64) is None
    assert [k.id for k in await storage.api_keys.all()] == ["k1", "k2"]

    revoked_at = T0 + timedelta(days=1)
    assert await storage.api_keys.revoke("k1", revoked_at) is True
    assert await storage.api_keys.revoke("k1", revoked_at + timedelta(days=1)) is False  # keeps the first time
    assert await storage.api_keys.revoke("missing", revoked_at) is False
    got = await storage.api_keys.by_hash(driver.key_hash)
    assert got is not None
    assert got.revoked_at == revoked_at
    assert type(got.role) is Role


async def test_api_key_conflicts(storage: SqlStorage) -> None:
    await storage.api_keys.add(_key(1))
    with pytest.raises(Conflict):
        await storage.api_keys.add(_key(1))
    with pytest.raises(Conflict):  # same hash under another id
        await storage.api_keys.add(ApiKey("k9", "dup", Role.ADMIN, _key(1).key_hash, T0))
