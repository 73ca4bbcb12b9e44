"""Tariffs: what a charging session costs, and the validator that reports every problem at once.

Pure: no I/O, no clock. All prices are *net* (VAT excluded) ``Decimal`` amounts in the
tariff's currency, and may carry more digits than the currency's minor unit (e.g.
``0.2975`` EUR/kWh); rounding happens once per priced line item (see ``ems.billing.pricing``).

Components of a tariff:

* ``energy_per_kwh``: per kWh delivered (from the meter register).
* ``time_per_minute``: per minute of *charging time* (session start until charging ended).
* ``parking_per_minute``: per minute *plugged in* (session start until stop), charging or not.
* ``session_fee``: once per session.
* ``idle_per_minute`` after ``idle_grace_minutes``: per minute plugged in after charging ended.
* ``tou``: time-of-use bands in the site's local time that override ``energy_per_kwh`` and/or
  ``time_per_minute`` while they are in force.
* ``min_price`` / ``max_price``: bounds on the net session price (before VAT).
* ``vat_percent``: added on the net total as its own line item.

Time-of-use band semantics: a band is in force on each of its ``days`` (0 = Monday ... 6 =
Sunday, in the site's local calendar) from ``start`` (inclusive) to ``end`` (exclusive), both
local wall-clock times. ``end`` at or before ``start`` means the band runs past midnight into
the next day (``22:00``-``06:00``); ``end == 00:00`` means midnight. ``days`` names the day the
band *starts*. A band is in force at an instant when the site's local wall clock shows a time
(and weekday) inside it, so it is DST-correct by construction: a skipped hour (spring forward) is
never priced, a repeated hour (fall back) is priced by the band the wall clock shows each time,
and a band is as long in real minutes as the wall clock made it that day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ems.domain.money import MINOR_UNITS

ALL_DAYS: frozenset[int] = frozenset(range(7))
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_S = 86_400
_WEEK_S = 7 * _DAY_S


@dataclass(frozen=True, slots=True)
class TouBand:
    """A time-of-use band: overrides the tariff's energy and/or charging-time price while in force."""

    name: str
    start: time
    end: time
    days: frozenset[int] = ALL_DAYS
    energy_per_kwh: Decimal | None = None
    """Net price per kWh in this band; ``None``: the tariff's ``energy_per_kwh``."""
    time_per_minute: Decimal | None = None
    """Net price per charging minute in this band; ``None``: the tariff's ``time_per_minute``."""

    def week_intervals_s(self) -> list[tuple[int, int]]:
        """Where the band is in force, as ``[start, end)`` seconds since Monday 00:00 (local).

        Wrapping bands and Sunday-night bands are split so every interval lies within one week.
        """
        start_s = _seconds(self.start)
        length_s = (_seconds(self.end) - start_s) % _DAY_S or _DAY_S
        out: list[tuple[int, int]] = []
        for day in sorted(self.days):
            a = day * _DAY_S + start_s
            b = a + length_s
            if b <= _WEEK_S:
                out.append((a, b))
            else:
                out.extend([(a, _WEEK_S), (0, b - _WEEK_S)])
        return out


@dataclass(frozen=True, slots=True)
class Tariff:
    id: str
    name: str
    currency: str
    energy_per_kwh: Decimal = Decimal(0)
    time_per_minute: Decimal = Decimal(0)
    parking_per_minute: Decimal = Decimal(0)
    session_fee: Decimal = Decimal(0)
    idle_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: int = 0
    tou: tuple[TouBand, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    vat_percent: Decimal = Decimal(0)
    description: str = ""


def tariff_problems(tariff: Tariff, *, timezone: str | None = None) -> list[str]:
    """Every problem with ``tariff`` (and the site ``timezone``, if given), each a sentence; empty: valid."""
    out: list[str] = []
    if not tariff.name.strip():
        out.append("name must not be empty")
    if tariff.currency not in MINOR_UNITS:
        out.append(f"currency {tariff.currency!r} is not a known ISO 4217 code")
    prices: list[tuple[str, Decimal | None]] = [
        ("energy_per_kwh", tariff.energy_per_kwh),
        ("time_per_minute", tariff.time_per_minute),
        ("parking_per_minute", tariff.parking_per_minute),
        ("session_fee", tariff.session_fee),
        ("idle_per_minute", tariff.idle_per_minute),
        ("min_price", tariff.min_price),
        ("max_price", tariff.max_price),
    ]
    for band in tariff.tou:
        prices += [
            (f"tou band {band.name!r} energy_per_kwh", band.energy_per_kwh),
            (f"tou band {band.name!r} time_per_minute", band.time_per_minute),
        ]
    out.extend(_price_problems(prices))
    if tariff.idle_grace_minutes < 0:
        out.append(f"idle_grace_minutes must not be negative, got {tariff.idle_grace_minutes}")
    if not tariff.vat_percent.is_finite() or not Decimal(0) <= tariff.vat_percent <= Decimal(100):
        out.append(f"vat_percent must be between 0 and 100, got {tariff.vat_percent}")
    if (
        tariff.min_price is not None
        and tariff.max_price is not None
        and tariff.min_price.is_finite()
        and tariff.max_price.is_finite()
        and tariff.min_price > tariff.max_price
    ):
        out.append(f"min_price {tariff.min_price} exceeds max_price {tariff.max_price}")
    out.extend(tou_problems(tariff.tou))
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"time zone {timezone!r} is not a known IANA zone")
    return out


def _price_problems(prices: Iterable[tuple[str, Decimal | None]]) -> list[str]:
    out: list[str] = []
    for name, value in prices:
        if value is None:
            continue
        if not value.is_finite():
            out.append(f"{name} must be a finite number, got {value}")
        elif value < 0:
            out.append(f"{name} must not be negative, got {value}")
    return out


def tou_problems(bands: Iterable[TouBand]) -> list[str]:
    """Problems with time-of-use bands: names, days, empty bands, and every overlapping pair (named)."""
    out: list[str] = []
    bands = list(bands)
    names = [b.name for b in bands]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"tou band name {dup!r} is used more than once")
    for b in bands:
        if not b.name.strip():
            out.append("tou band name must not be empty")
        if not b.days or not b.days <= ALL_DAYS:
            out.append(
                f"tou band {b.name!r}: days must be a non-empty subset of 0 (Mon) .. 6 (Sun), got {sorted(b.days)}"
            )
        if b.start.tzinfo is not None or b.end.tzinfo is not None:
            out.append(f"tou band {b.name!r}: start and end are local wall-clock times, without a time zone")
    valid = [b for b in bands if b.days and b.days <= ALL_DAYS]
    for i, first in enumerate(valid):
        for second in valid[i + 1 :]:
            overlap = _first_overlap(first.week_intervals_s(), second.week_intervals_s())
            if overlap is not None:
                out.append(f"tou bands {first.name!r} and {second.name!r} overlap on {_describe(*overlap)}")
    return out


def _first_overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> tuple[int, int] | None:
    hits = [(max(a0, b0), min(a1, b1)) for a0, a1 in a for b0, b1 in b if max(a0, b0) < min(a1, b1)]
    return min(hits) if hits else None


def _describe(start_s: int, end_s: int) -> str:
    day, offset = divmod(start_s, _DAY_S)
    end_offset = end_s - day * _DAY_S
    return f"{DAY_NAMES[day]} {_hhmm(offset)}-{_hhmm(end_offset)}"


def _hhmm(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second
