"""Property tests of session pricing: totals add up, TOU bands match a per-minute wall-clock oracle
(across DST), and the price depends only on the set of readings, not how they were batched."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ems.billing.pricing import price_session
from ems.domain.billing import EnergyReading, LineKind, SessionUsage
from ems.domain.money import Money
from ems.domain.tariff import ALL_DAYS, Tariff, TouBand, tou_problems
from tests.examples import examples

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Around the 2026 DST changes in Europe and the US, so sessions cross them often.
ANCHORS = [
    datetime(2026, 3, 8, 5, tzinfo=UTC),
    datetime(2026, 3, 29, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 5, tzinfo=UTC),
    datetime(2026, 4, 5, 14, tzinfo=UTC),
]

prices = st.decimals(min_value=0, max_value=2, places=4)
minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@st.composite
def bands(draw: st.DrawFn) -> tuple[TouBand, ...]:
    """Up to 3 bands that the validator accepts (non-overlapping)."""
    out: list[TouBand] = []
    for i in range(draw(st.integers(0, 3))):
        start, end = draw(minutes_of_day), draw(minutes_of_day)
        if start == end:
            continue
        days = frozenset(draw(st.sets(st.integers(0, 6), min_size=1))) if draw(st.booleans()) else ALL_DAYS
        band = TouBand(f"b{i}", start, end, days, draw(st.none() | prices), draw(st.none() | prices))
        if not tou_problems([*out, band]):
            out.append(band)
    return tuple(out)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    lo = draw(st.none() | st.decimals(min_value=0, max_value=5, places=2))
    hi = draw(st.none() | st.decimals(min_value=5, max_value=80, places=2))
    return Tariff(
        "t",
        "random",
        draw(st.sampled_from(["EUR", "JPY", "USD"])),
        energy_per_kwh=draw(prices),
        time_per_minute=draw(prices),
        parking_per_minute=draw(prices),
        session_fee=draw(prices),
        idle_per_minute=draw(prices),
        idle_grace_minutes=draw(st.integers(0, 30)),
        tou=draw(bands()),
        min_price=lo,
        max_price=hi,
        vat_percent=draw(st.sampled_from([Decimal(0), Decimal("7.7"), Decimal(19), Decimal(21)])),
    )


@st.composite
def usages(draw: st.DrawFn) -> SessionUsage:
    """A session of whole minutes with register readings at whole minutes, rising by whole Wh."""
    start = draw(st.sampled_from(ANCHORS)) + timedelta(minutes=draw(st.integers(-600, 600)))
    length = draw(st.integers(0, 36 * 60))
    offsets = sorted(draw(st.sets(st.integers(0, length), max_size=12)))
    register, readings = draw(st.integers(0, 10**7)), []
    for m in offsets:
        register += draw(st.integers(0, 20_000))
        readings.append(EnergyReading(start + timedelta(minutes=m), Decimal(register)))
    return SessionUsage(start, start + timedelta(minutes=length), tuple(readings))


@settings(max_examples=examples(300), deadline=None)
@given(tariffs(), usages(), st.sampled_from(ZONES))
def test_line_items_sum_exactly_to_the_total(tariff: Tariff, usage: SessionUsage, zone: str) -> None:
    cdr = price_session(tariff, usage, zone)
    total = Money.zero(tariff.currency)
    for line in cdr.line_items:
        assert line.amount == line.amount.rounded()
        total += line.amount
    assert total == cdr.total == cdr.net + cdr.vat
    assert cdr.total.amount >= 0
    if tariff.max_price is not None and tariff.min_price is not None:
        assert tariff.min_price <= cdr.net.amount <= tariff.max_price


@settings(max_examples=examples(200), deadline=None)
@given(usages(), bands(), st.sampled_from(ZONES), st.data())
def test_tou_split_matches_a_per_minute_wall_clock_oracle(
    usage: SessionUsage, tou: tuple[TouBand, ...], zone: str, data: st.DataObject
) -> None:
    # Constant 60 Wh per minute (3.6 kW): each minute's energy goes to the band its local wall time is in.
    start, stop = usage.started_at, usage.stopped_at
    minutes = int((stop - start).total_seconds() // 60)
    flat = SessionUsage(start, stop, (EnergyReading(start, Decimal(0)), EnergyReading(stop, Decimal(60 * minutes))))
    tariff = Tariff("t", "x", "EUR", energy_per_kwh=Decimal(1), tou=tou)
    cdr = price_session(tariff, flat, zone)
    got = {line.band: line.quantity for line in cdr.line_items if line.kind is LineKind.ENERGY}
    tz = ZoneInfo(zone)
    expected: dict[str | None, int] = {}
    for m in range(minutes):
        wall = (start + timedelta(minutes=m)).astimezone(tz)
        band = next((b.name for b in tou if _in_band(b, wall)), None)
        expected[band] = expected.get(band, 0) + 60
    assert got == {band: Decimal(wh).scaleb(-3).quantize(Decimal("0.001")) for band, wh in expected.items() if wh}


def _in_band(band: TouBand, wall: datetime) -> bool:
    s = wall.hour * 3600 + wall.minute * 60
    a = band.start.hour * 3600 + band.start.minute * 60
    b = band.end.hour * 3600 + band.end.minute * 60
    day, yesterday = wall.weekday(), (wall.weekday() - 1) % 7
    if b > a:
        return day in band.days and a <= s < b
    return (day in band.days and s >= a) or (yesterday in band.days and s < b)


@settings(max_examples=examples(200), deadline=None)
@given(tariffs(), usages(), st.sampled_from(ZONES), st.randoms(use_true_random=False))
def test_price_does_not_depend_on_how_readings_were_batched(
    tariff: Tariff, usage: SessionUsage, zone: str, rnd: object
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    reference = price_session(tariff, usage, zone)
    readings = list(usage.readings)
    # Delivered in shuffled batches, some twice (a station resending after a lost ack) ...
    batches = [readings[i : i + 3] for i in range(0, len(readings), 3)]
    rnd.shuffle(batches)
    resent = [r for batch in batches for r in batch] + rnd.sample(readings, k=min(2, len(readings)))
    # ... and split finer: a reading halfway between two others, on the interpolation line.
    finer = list(resent)
    for a, b in itertools.pairwise(readings):
        span = b.at - a.at
        if span.total_seconds() > 0:
            finer.append(EnergyReading(a.at + span / 2, (a.register_wh + b.register_wh) / 2))
    rnd.shuffle(finer)
    for variant in (resent, finer):
        again = price_session(tariff, SessionUsage(usage.started_at, usage.stopped_at, tuple(variant)), zone)
        assert again == reference
