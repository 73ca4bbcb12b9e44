import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ems.bus import EventBus, Overflow
from ems.clock import FakeClock
from ems.config import Settings
from ems.domain.events import SessionEnded, StationBooted, StatusChanged
from ems.domain.station import ConnectorStatus
from ems.security import hash_password, password_problem, verify_password

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def booted(n: int) -> StationBooted:
    return StationBooted(at=T0, station_id=f"cp{n}")


async def test_bus_delivers_by_type_in_order() -> None:
    bus = EventBus()
    boots = bus.subscribe(StationBooted, name="boots")
    everything = bus.subscribe(name="all")
    await bus.publish(booted(1))
    await bus.publish(
        StatusChanged(at=T0, station_id="cp1", evse_id=1, connector_id=1, status=ConnectorStatus.CHARGING)
    )
    await bus.publish(booted(2))
    assert [e.station_id for e in boots.drain()] == ["cp1", "cp2"]
    assert len(everything.drain()) == 3


async def test_slow_subscriber_drops_oldest_and_shows_it() -> None:
    bus = EventBus()
    slow = bus.subscribe(StationBooted, name="slow", maxsize=3)
    for n in range(10):
        await bus.publish(booted(n))
    assert [e.station_id for e in slow.drain()] == ["cp7", "cp8", "cp9"]
    (stats,) = bus.stats()
    assert stats.dropped == 7 and stats.high_water == 3 and stats.name == "slow"


async def test_blocking_subscriber_applies_back_pressure() -> None:
    bus = EventBus()
    audit = bus.subscribe(SessionEnded, name="audit", maxsize=1, overflow=Overflow.BLOCK)
    ended = [SessionEnded(at=T0, session_id=str(i), station_id="cp", evse_id=1, energy_wh=1.0) for i in range(3)]
    publisher = asyncio.create_task(_publish_all(bus, ended))
    received = [await asyncio.wait_for(audit.get(), 1) for _ in range(3)]
    await asyncio.wait_for(publisher, 1)
    assert [e.session_id for e in received] == ["0", "1", "2"]
    assert audit.stats().dropped == 0


async def _publish_all(bus: EventBus, events: list[SessionEnded]) -> None:
    for e in events:
        await bus.publish(e)


async def test_closed_subscription_gets_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe(name="x")
    sub.close()
    await bus.publish(booted(1))
    assert sub.pending() == 0 and bus.stats() == []


async def test_fake_clock_sleep_wakes_only_when_advanced() -> None:
    clock = FakeClock(T0)
    sleeper = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    clock.advance(59)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() == datetime(2026, 1, 5, 8, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_settings_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMS_DATABASE_URL", raising=False)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.api_port, s.ocpp_port, s.is_postgres) == (8000, 9000, False)
    assert str(s.sqlite_path).endswith("ems.db")
    assert Settings(database_url="postgresql://u@h/db").is_postgres
    with pytest.raises(ValidationError, match="unsupported scheme"):
        Settings(database_url="mysql://h/db")
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(admin_api_key="changeme")  # type: ignore[arg-type]
    monkeypatch.setenv("EMS_API_PORT", "8123")
    monkeypatch.setenv("EMS_LOG_LEVEL", "debug")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.api_port == 8123 and s.log_level == "DEBUG"


def test_password_hash_verifies_in_constant_time_shape() -> None:
    stored = hash_password("s3cret-pass")
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("wrong-pass", stored)
    assert not verify_password("s3cret-pass", "garbage")
    assert hash_password("s3cret-pass") != stored  # salted
    assert password_problem("short") is not None
    assert password_problem("x" * 41) is not None
    assert password_problem("good-password") is None
