from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.errors import InvalidInput, StorageError
from ems.storage.factory import SqlStorage
from tests.examples import examples

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _sample(station: str, seconds: int, value: float, **kw: object) -> MeterSample:
    return MeterSample(
        station_id=station,
        evse_id=1,
        measured_at=T0 + timedelta(seconds=seconds),
        measurand=Measurand.ENERGY_IMPORT_REGISTER,
        value=value,
        **kw,  # type: ignore[arg-type]
    )


async def test_batch_round_trip_every_field(storage: SqlStorage) -> None:
    paris = timezone(timedelta(hours=1))
    full = MeterSample(
        station_id="cp1",
        evse_id=2,
        measured_at=datetime(2026, 11, 21, 9, 0, 0, 250000, tzinfo=paris),
        measurand=Measurand.CURRENT_IMPORT,
        value=15.75,
        session_id="s1",
        phase="L2",
        context=ReadingContext.TRANSACTION_BEGIN,
        raw_value="15750",
        raw_unit="mA",
        flag="register_backwards",
    )
    minimal = _sample("cp1", 1, 1234.5)
    await storage.samples.add_many([full, minimal])
    got = await storage.samples.for_station("cp1")
    assert got == [full, minimal]  # full is at 08:00:00.25 UTC, minimal at 08:00:01
    assert got[0].measured_at.utcoffset() == timedelta(0)
    assert (type(got[0].measurand), type(got[0].context)) == (Measurand, ReadingContext)
    assert await storage.samples.for_session("s1") == [full]


async def test_for_session_oldest_first(storage: SqlStorage) -> None:
    batch = [_sample("cp1", s, float(s), session_id="s1") for s in (30, 10, 20)]
    await storage.samples.add_many([*batch, _sample("cp1", 5, 0.0, session_id="s2"), _sample("cp1", 1, 0.0)])
    assert [s.value for s in await storage.samples.for_session("s1")] == [10.0, 20.0, 30.0]
    assert await storage.samples.for_session("none") == []


async def test_for_station_range_and_limit(storage: SqlStorage) -> None:
    await storage.samples.add_many([_sample("cp1", s, float(s)) for s in range(10)] + [_sample("cp2", 3, -1.0)])
    window = await storage.samples.for_station("cp1", since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6))
    assert [s.value for s in window] == [3.0, 4.0, 5.0]
    assert [s.value for s in await storage.samples.for_station("cp1", limit=2)] == [0.0, 1.0]
    assert [s.value for s in await storage.samples.for_station("cp2")] == [-1.0]


async def test_batch_is_all_or_nothing(storage: SqlStorage) -> None:
    good = [_sample("cp1", s, 1.0) for s in range(5)]
    broken = MeterSample(None, 1, T0, Measurand.VOLTAGE, 230.0)  # type: ignore[arg-type]  # station_id NOT NULL
    with pytest.raises(StorageError):
        await storage.samples.add_many([*good, broken, *good])
    assert await storage.samples.for_station("cp1") == []


async def test_nan_is_refused_before_writing(storage: SqlStorage) -> None:
    with pytest.raises(InvalidInput, match="sample 1"):
        await storage.samples.add_many([_sample("cp1", 0, 1.0), _sample("cp1", 1, math.nan)])
    assert await storage.samples.for_station("cp1") == []
    await storage.samples.add_many([])


_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
_offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=_offsets)  # noqa: DTZ001
_station_ids = (f"hyp-{n}" for n in itertools.count())


def _samples_for(station: str) -> st.SearchStrategy[list[MeterSample]]:
    sample = st.builds(
        MeterSample,
        station_id=st.just(station),
        evse_id=st.integers(0, 2**31 - 1),
        measured_at=_times,
        measurand=st.sampled_from(Measurand),
        value=st.floats(allow_nan=False),
        session_id=st.none() | _texts,
        phase=st.none() | st.sampled_from(["L1", "L2", "L3", "L1-N", "N"]),
        context=st.sampled_from(ReadingContext),
        raw_value=st.none() | _texts,
        raw_unit=st.none() | _texts,
        flag=st.none() | _texts,
    )
    return st.lists(sample, min_size=1, max_size=20)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_property_any_batch_round_trips(storage: SqlStorage, data: st.DataObject) -> None:
    station = next(_station_ids)  # a fresh station per example: examples share the fixture's database
    batch = data.draw(_samples_for(station))
    await storage.samples.add_many(batch)
    got = await storage.samples.for_station(station)
    once: dict[tuple[object, ...], MeterSample] = {}
    for s in batch:  # stored once per natural key (migration 0002), the first one wins
        key = (s.evse_id, s.measured_at, s.measurand, s.phase or "", s.context, s.raw_value or "")
        once.setdefault(key, s)
    assert Counter(got) == Counter(once.values())
    assert [s.measured_at for s in got] == sorted(s.measured_at for s in once.values())
    assert all(s.measured_at.tzinfo is not None and s.measured_at.utcoffset() == timedelta(0) for s in got)


async def test_each_sample_is_stored_once_by_its_natural_key(storage: SqlStorage) -> None:
    """A replayed batch (kill -9 between storing and acking the journal) or a resend adds nothing."""
    batch = [
        _sample("cp-nk", 0, 1000.0, raw_value="1000", session_id="s1"),
        _sample("cp-nk", 0, 1000.0, raw_value="1000", session_id="s1", phase="L1"),  # another phase
        _sample("cp-nk", 60, 1100.0, raw_value="1100", session_id="s1"),
        _sample("cp-nk", 60, 21.0, raw_value="21", session_id="s1"),  # same instant, another raw value
    ]
    await storage.samples.add_many(batch)
    await storage.samples.add_many(batch)  # the replay
    await storage.samples.add_many([*batch[:2], batch[0], _sample("cp-nk", 120, 1200.0, raw_value="1200")])
    async with storage.transaction():  # twice in one transaction (the applier's batch)
        await storage.samples.add_many(batch)
        await storage.samples.add_many([_sample("cp-nk", 180, 1300.0, raw_value="1300")])
    before = await storage.samples.count()
    stored = await storage.samples.for_station("cp-nk")
    assert len(stored) == 6
    await storage.samples.add_many([_sample("cp-nk", 240, 1400.0), _sample("cp-nk", 240, 1400.0, phase="L1")])
    assert await storage.samples.count() == before + 2, "count() counts what is stored"
    assert Counter((s.measured_at, s.phase, s.raw_value) for s in stored).most_common(1)[0][1] == 1
