"""Rollups kept incrementally equal a from-scratch recomputation exactly (issue 14).

Samples and status changes arrive in batches, some late and out of order, some re-sent, across
the end of summer time in Stockholm (Sunday 25 October 2026, 03:00 CEST -> 02:00 CET: a 25-hour
local day). After that, ``rebuild`` recomputes every rollup from the raw rows; every rollup row
must be identical. Independent checks pin the definitions (energy per local day, time in use on
the 25-hour day).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.billing.pricing import price_session
from ems.domain.billing import EnergyReading, SessionCost, SessionUsage, User
from ems.domain.card import Card
from ems.domain.session import Measurand, MeterSample, ReadingContext
from ems.domain.station import ConnectorStatus, ConnectorStatusRecord, Station
from ems.domain.tariff import Tariff
from ems.storage.factory import SqlStorage
from ems.storage.rollup_rules import Placement
from ems.storage.rollups import writer_for
from tests.examples import examples

pytestmark = pytest.mark.slow

TZ = "Europe/Stockholm"
START = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)  # 14:00 CEST, Saturday
HOURS = 40  # to Monday 04:00 UTC: covers the 25-hour Sunday
STATIONS = ("CP1", "CP2")
EVSES = (1, 2)
ROLLUPS = (
    "rollup_register_state",
    "rollup_evse_5min",
    "rollup_site_5min",
    "rollup_station_day",
    "rollup_station_day_fees",
    "rollup_user_month",
)


def _samples(rng: random.Random) -> list[MeterSample]:
    out: list[MeterSample] = []
    for station in STATIONS:
        for evse in EVSES:
            wh = rng.uniform(1000, 5000)
            at = START + timedelta(seconds=rng.randint(0, 120))
            while at < START + timedelta(hours=HOURS):
                power_w = rng.choice((0.0, 3700.0, 7400.0, 11000.0)) + rng.random()
                wh += power_w * 137 / 3600
                if rng.random() < 0.02:
                    wh -= 50  # a register that goes back: counts 0, not negative
                out.append(MeterSample(station, evse, at, Measurand.ENERGY_IMPORT_REGISTER, round(wh, 3)))
                out.append(MeterSample(station, evse, at, Measurand.POWER_IMPORT, power_w))
                for phase in ("L1", "L2", "L3-N"):
                    out.append(MeterSample(station, evse, at, Measurand.POWER_IMPORT, power_w / 3, phase=phase))
                if rng.random() < 0.05:  # a second reading at the same instant (other context, higher)
                    out.append(
                        MeterSample(
                            station,
                            evse,
                            at,
                            Measurand.ENERGY_IMPORT_REGISTER,
                            round(wh + 1.5, 3),
                            context=ReadingContext.TRANSACTION_END,
                        )
                    )
                if rng.random() < 0.03:  # flagged: stored, never counted
                    out.append(
                        MeterSample(
                            station,
                            evse,
                            at,
                            Measurand.ENERGY_IMPORT_REGISTER,
                            wh + 9e6,
                            context=ReadingContext.TRIGGER,
                            flag="register_backwards",
                        )
                    )
                at += timedelta(seconds=rng.randint(60, 420))
    return out


def _statuses(rng: random.Random) -> list[ConnectorStatusRecord]:
    out: list[ConnectorStatusRecord] = []
    cycle = (
        ConnectorStatus.AVAILABLE,
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.FINISHING,
        ConnectorStatus.OCCUPIED,
    )
    for station in STATIONS:
        for evse in EVSES:
            at = START
            while at < START + timedelta(hours=HOURS):
                out.append(ConnectorStatusRecord(station, evse, 1, rng.choice(cycle), at))
                at += timedelta(minutes=rng.randint(5, 300), microseconds=rng.randint(0, 999_999))
    return out


def _batches(rng: random.Random, rows: list[Any], size: int) -> list[list[Any]]:
    """In time order, but 10% held back and sent late, and 10% sent twice."""
    late = [r for r in rows if rng.random() < 0.1]
    held = {id(r) for r in late}
    on_time = [r for r in rows if id(r) not in held]
    batches = [on_time[i : i + size] for i in range(0, len(on_time), size)]
    rng.shuffle(late)
    for i in range(0, len(late), 7):
        batches.insert(rng.randint(len(batches) // 2, len(batches)), late[i : i + 7])
    for batch in list(batches):
        if rng.random() < 0.1:
            batches.insert(rng.randint(0, len(batches)), list(batch))
    return batches


async def _snapshot(storage: SqlStorage) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in ROLLUPS:
        rows = await storage.db.fetchall(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(r.values()) for r in rows)
    return out


async def test_incremental_rollups_equal_a_rebuild_across_dst(storage: SqlStorage) -> None:
    rng = random.Random(14)
    writer = writer_for(storage.db)
    await writer.set_placement({s: Placement("depot", TZ) for s in STATIONS}, Placement("other", "UTC"))
    for station in STATIONS:
        await storage.stations.add(Station(station))
    samples = _samples(rng)
    for batch in _batches(rng, samples, 60):
        await storage.samples.add_many(batch)
    statuses = _statuses(rng)
    for batch in _batches(rng, statuses, 1):
        await storage.stations.record_status(batch[0])
    await storage.billing.users.add(User("u1", "Ann", created_at=START))
    await storage.cards.add(Card("CARD1", user_id="u1"))
    tariff = Tariff("std", "Standard", "EUR", energy_per_kwh=Decimal("0.30"), vat_percent=Decimal("25"))
    priced_wh = Decimal(0)
    for i, (station, hours) in enumerate((("CP1", 1), ("CP1", 3), ("CP2", 2))):
        begin = START + timedelta(hours=8 * i + 5)
        end = begin + timedelta(hours=hours)
        usage = SessionUsage(begin, end, (EnergyReading(begin, Decimal(0)), EnergyReading(end, Decimal("7000.5"))))
        cost = SessionCost(
            f"s{i}", station, price_session(tariff, usage, TZ), end, card_uid="CARD1", captured_minor=100
        )
        assert await storage.billing.costs.add(cost)
        priced_wh += cost.cdr.energy_wh
        assert not await storage.billing.costs.add(cost)  # once

    incremental = await _snapshot(storage)
    counts = await writer.rebuild()
    rebuilt = await _snapshot(storage)

    assert counts["status_changes"] >= len(statuses)  # a re-sent status change is history twice (zero-length)
    for table in ROLLUPS:
        assert incremental[table] == rebuilt[table], table
    assert len(rebuilt["rollup_evse_5min"]) > 1500

    # Independent of the rollup code: energy per station and local day from the distinct samples.
    expected: dict[tuple[str, str], int] = {}
    for station in STATIONS:
        for evse in EVSES:
            best: dict[datetime, float] = {}
            for s in samples:
                if (s.station_id, s.evse_id, s.measurand, s.flag) == (
                    station,
                    evse,
                    Measurand.ENERGY_IMPORT_REGISTER,
                    None,
                ):
                    best[s.measured_at] = max(best.get(s.measured_at, 0.0), s.value)
            points = sorted(best.items())
            for (_, before), (at, after) in itertools.pairwise(points):
                bucket_start = datetime.fromtimestamp(int(at.timestamp()) // 300 * 300, UTC)
                day = bucket_start.astimezone(_zone()).date().isoformat()
                delta = round((after - before) * 1000) if after > before else 0
                expected[(station, day)] = expected.get((station, day), 0) + delta
    days = await storage.db.fetchall("SELECT station_id, day, energy_mwh, in_use_us FROM rollup_station_day")
    assert {(r["station_id"], r["day"]): r["energy_mwh"] for r in days if r["energy_mwh"]} == {
        k: v for k, v in expected.items() if v
    }
    # Time in use on the 25-hour Sunday is at most 25 h per connector, and some day has more than 24 h in all.
    sunday = [r["in_use_us"] for r in days if r["day"] == "2026-10-25"]
    assert sunday and all(0 <= us <= 2 * 25 * 3600 * 10**6 for us in sunday)
    users = await storage.db.fetchall("SELECT user_id, month, sessions, energy_mwh FROM rollup_user_month")
    assert [(r["user_id"], r["month"], r["sessions"], r["energy_mwh"]) for r in users] == [
        ("u1", "2026-10", 3, int(priced_wh * 1000))
    ]


def _zone() -> ZoneInfo:
    return ZoneInfo(TZ)


async def test_a_connector_charging_all_sunday_is_in_use_25_hours(storage: SqlStorage) -> None:
    await writer_for(storage.db).set_placement({"CP1": Placement("depot", TZ)}, Placement("other", "UTC"))
    await storage.stations.add(Station("CP1"))
    saturday_midnight = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 CEST Sunday
    monday_midnight = datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # 00:00 CET Monday
    # Sent out of order: the closing Available first, then the Charging that opens the day.
    await storage.stations.record_status(ConnectorStatusRecord("CP1", 1, 1, ConnectorStatus.AVAILABLE, monday_midnight))
    await storage.stations.record_status(
        ConnectorStatusRecord("CP1", 1, 1, ConnectorStatus.CHARGING, saturday_midnight)
    )
    rows = await storage.db.fetchall("SELECT day, in_use_us FROM rollup_station_day WHERE in_use_us <> 0")
    assert [(r["day"], r["in_use_us"]) for r in rows] == [("2026-10-25", 25 * 3600 * 10**6)]
    # A late Finishing at 12:00 local (11:00 UTC) cuts the interval.
    noon = datetime(2026, 10, 25, 11, 0, tzinfo=UTC)
    await storage.stations.record_status(ConnectorStatusRecord("CP1", 1, 1, ConnectorStatus.FINISHING, noon))
    rows = await storage.db.fetchall("SELECT day, in_use_us FROM rollup_station_day WHERE in_use_us <> 0")
    assert [(r["day"], r["in_use_us"]) for r in rows] == [("2026-10-25", 13 * 3600 * 10**6)]


# Around local midnight in Stockholm (22:00 UTC on Saturday 24 October 2026), on a grid of 37 s so
# that several readings share an instant and a 5-minute bucket, and batches straddle the day.
_MIDNIGHT = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
_instants = st.integers(-12, 12).map(lambda k: _MIDNIGHT + timedelta(seconds=37 * k))
_register = st.builds(
    lambda evse, at, wh, context, flag: MeterSample(
        "CPX", evse, at, Measurand.ENERGY_IMPORT_REGISTER, wh, context=context, flag=flag
    ),
    st.sampled_from(EVSES),
    _instants,
    st.one_of(st.integers(0, 5000).map(lambda w: w / 8), st.just(2e11)),  # 2e11 Wh: out of range
    st.sampled_from((ReadingContext.SAMPLE_PERIODIC, ReadingContext.TRANSACTION_END)),
    st.sampled_from((None, None, None, "register_backwards")),
)
_power = st.builds(
    lambda evse, at, w, phase: MeterSample("CPX", evse, at, Measurand.POWER_IMPORT, w, phase=phase),
    st.sampled_from(EVSES),
    _instants,
    st.integers(-20000, 20000).map(lambda w: w / 3),  # negative: a mean floors, not truncates
    st.sampled_from((None, "L1", "L2-N", "L3", "N")),
)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_property_any_split_order_and_replay_equals_a_rebuild(storage: SqlStorage, data: st.DataObject) -> None:
    """Whatever the batches (split anywhere, in any order, some sent again), the rollups equal a rebuild."""
    writer = writer_for(storage.db)
    for table in ("meter_samples", *ROLLUPS):  # examples share the fixture's database
        await storage.db.execute(f"DELETE FROM {table}")
    await writer.set_placement({"CPX": Placement("depot", TZ)}, Placement("other", "UTC"))
    samples = data.draw(st.lists(st.one_of(_register, _power), min_size=1, max_size=40))
    order = data.draw(st.permutations(samples))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=8)))
    batches = [order[a:b] for a, b in itertools.pairwise([0, *cuts, len(order)]) if order[a:b]]
    for batch in batches:
        await storage.samples.add_many(batch)
        if data.draw(st.integers(0, 4)) == 0:  # a replay, or a station's resend
            await storage.samples.add_many(batch)
    incremental = await _snapshot(storage)
    await writer.rebuild()
    assert incremental == await _snapshot(storage)


async def test_without_the_trigger_the_rollups_are_kept_from_python(pg_storage: SqlStorage) -> None:
    """A TimescaleDB hypertable has no transition tables, so no trigger (migration 0022): the Python path."""
    await pg_storage.db.execute("DROP TRIGGER ems_rollup_samples ON meter_samples")
    rng = random.Random(22)
    writer = writer_for(pg_storage.db)
    await writer.set_placement({s: Placement("depot", TZ) for s in STATIONS}, Placement("other", "UTC"))
    for batch in _batches(rng, _samples(rng)[:3000], 60):
        await pg_storage.samples.add_many(batch)
    async with pg_storage.db.transaction() as tx:
        assert not await writer.rolled_up_by_database(tx)
    incremental = await _snapshot(pg_storage)
    await writer.rebuild()
    assert incremental == await _snapshot(pg_storage)
    assert len(incremental["rollup_evse_5min"]) > 100


@pytest.mark.parametrize(
    "first, second",
    [
        # A reading inside the interval moves the energy into an earlier bucket: the later bucket
        # keeps its row, at 0 energy (its register point is still there).
        ([(0, 0.0), (400, 100.0)], [(100, 100.0)]),
        # A higher reading at an instant already stored (another context): the maximum counts.
        ([(0, 0.0), (400, 100.0)], [(0, 100.0)]),
        # Both, across local midnight (22:00 UTC).
        ([(-100, 0.0), (200, 50.0), (700, 90.0)], [(-50, 50.0), (250, 90.0)]),
    ],
)
async def test_a_late_reading_that_empties_a_bucket_matches_a_rebuild(
    storage: SqlStorage, first: list[tuple[int, float]], second: list[tuple[int, float]]
) -> None:
    writer = writer_for(storage.db)
    await writer.set_placement({"CPX": Placement("depot", TZ)}, Placement("other", "UTC"))

    def readings(points: list[tuple[int, float]]) -> list[MeterSample]:
        return [
            MeterSample(
                "CPX",
                1,
                _MIDNIGHT + timedelta(seconds=s),
                Measurand.ENERGY_IMPORT_REGISTER,
                wh,
                context=ReadingContext.TRANSACTION_END if s == 0 and wh else ReadingContext.SAMPLE_PERIODIC,
            )
            for s, wh in points
        ]

    await storage.samples.add_many(readings(first))
    await storage.samples.add_many(readings(second))
    incremental = await _snapshot(storage)
    await writer.rebuild()
    assert incremental == await _snapshot(storage)
