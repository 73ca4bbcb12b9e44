"""Pricing a charging session under a tariff: meter readings and timestamps in, a charge detail record out.

Pure: no I/O, no clock; the site's time zone comes in as an argument.

Rounding rule (the one in ``ems.domain.money``): every quantity and price is kept exact
(``fractions.Fraction``) until a *line item* is priced; each line item's amount is rounded once
to the currency's minor unit with ROUND_HALF_EVEN; the net total is the sum of the rounded
lines; VAT is one line, ``round_half_even(net_total * vat_percent / 100)``; the total is net + VAT.
So the line items always sum exactly to the total. ``min_price``/``max_price`` bound the net
total through one adjustment line; the bounds are rounded inwards (minimum up, maximum down)
so the result never breaks them. Displayed quantities (kWh to 3 decimals,
minutes to 2) are rounded for reading only; amounts are computed from the exact quantities.

Energy: the lifetime register (Wh) is interpolated linearly between readings, which lets energy
be split exactly at time-of-use boundaries. The register is made monotone (a lower reading after
a higher one counts as no energy), readings at the same instant keep the highest value, and the
order readings arrive in does not matter: a session's price depends only on the set of readings,
not on how they were batched. A reading that lies on the interpolation line changes nothing.

Charging ended (start of idle time) is ``SessionUsage.charging_ended_at`` if known, else the
first instant the register reached its final value (the session start when no energy flowed;
the session stop when there are no readings at all).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from ems.domain.billing import (
    AssignmentScope,
    ChargeDetailRecord,
    EnergyReading,
    LineItem,
    LineKind,
    SessionUsage,
    TariffAssignment,
)
from ems.domain.money import MINOR_UNITS, Money, check_currency
from ems.domain.session import ChargingSession, Measurand, MeterSample
from ems.domain.tariff import Tariff, TouBand

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def energy_readings(samples: Iterable[MeterSample]) -> list[EnergyReading]:
    """The readings billing trusts: the all-phase ``Energy.Active.Import.Register`` (Wh), unflagged."""
    return [
        EnergyReading(s.measured_at, _decimal(s.value))
        for s in samples
        if s.measurand is Measurand.ENERGY_IMPORT_REGISTER and s.phase is None and s.flag is None
    ]


def usage_from_session(
    session: ChargingSession, samples: Iterable[MeterSample], *, stopped_at: datetime | None = None
) -> SessionUsage:
    """A session's usage: its samples plus the start/stop register values the station reported.

    ``stopped_at`` prices a session still running (the accrued cost) up to that instant.
    """
    stop = stopped_at or session.stopped_at
    if stop is None:
        raise ValueError(f"session {session.id} has not stopped; pass stopped_at to price it so far")
    readings = energy_readings(samples)
    if session.meter_start_wh is not None:
        readings.append(EnergyReading(session.started_at, _decimal(session.meter_start_wh)))
    if session.meter_stop_wh is not None and session.stopped_at is not None and stopped_at is None:
        readings.append(EnergyReading(session.stopped_at, _decimal(session.meter_stop_wh)))
    return SessionUsage(session.started_at, stop, tuple(readings))


def _decimal(value: float | int | Decimal) -> Decimal:
    # repr of a float is its shortest round-trip form: 12345.6 stays 12345.6, not 12345.6000000000003...
    return value if isinstance(value, Decimal) else Decimal(repr(value))


# ---------------------------------------------------------------- pricing


def price_session(tariff: Tariff, usage: SessionUsage, timezone: str | ZoneInfo) -> ChargeDetailRecord:
    """Price ``usage`` under ``tariff`` with time-of-use bands read in ``timezone`` (the site's)."""
    currency = check_currency(tariff.currency)
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    start, stop = _us(usage.started_at), _us(usage.stopped_at)
    if stop < start:
        raise ValueError(f"session stops ({usage.stopped_at}) before it starts ({usage.started_at})")
    curve = _EnergyCurve(usage.readings)
    if usage.charging_ended_at is not None:
        charging_end = min(max(_us(usage.charging_ended_at), start), stop)
    else:
        charging_end = curve.charging_ended(start, stop)

    energy_wh, charging_s = _split_by_band(tariff.tou, start, stop, charging_end, curve, tz)
    lines: list[LineItem] = []
    if tariff.session_fee:
        lines.append(_line(LineKind.SESSION_FEE, "Session fee", Fraction(1), "session", tariff.session_fee, currency))
    order: list[TouBand | None] = [None, *tariff.tou]
    for tou in order:
        key = tou.name if tou else None
        kwh = energy_wh.get(key, Fraction(0)) / 1000
        if kwh > 0:
            price = _override(tou.energy_per_kwh if tou else None, tariff.energy_per_kwh)
            lines.append(_line(LineKind.ENERGY, _label("Energy", tou), kwh, "kWh", price, currency, key))
    for tou in order:
        key = tou.name if tou else None
        minutes = charging_s.get(key, Fraction(0)) / 60
        price = _override(tou.time_per_minute if tou else None, tariff.time_per_minute)
        if minutes > 0 and price > 0:
            label = _label("Charging time", tou)
            lines.append(_line(LineKind.CHARGING_TIME, label, minutes, "min", price, currency, key))
    if tariff.parking_per_minute > 0 and stop > start:
        minutes = Fraction(stop - start, 60_000_000)
        lines.append(_line(LineKind.PARKING_TIME, "Parking time", minutes, "min", tariff.parking_per_minute, currency))
    idle_from = charging_end + tariff.idle_grace_minutes * 60_000_000
    if tariff.idle_per_minute > 0 and stop > idle_from:
        minutes = Fraction(stop - idle_from, 60_000_000)
        label = f"Idle time after a {tariff.idle_grace_minutes} min grace period"
        lines.append(_line(LineKind.IDLE_TIME, label, minutes, "min", tariff.idle_per_minute, currency))

    net = _sum(lines, currency)
    # Bounds round inwards (minimum up, maximum down) so a priced session never breaks them.
    if tariff.min_price is not None and net < (floor := _bound(tariff.min_price, currency, ROUND_CEILING)):
        lines.append(_adjustment(LineKind.MINIMUM_PRICE, "Minimum session price", floor - net))
    elif tariff.max_price is not None and (cap := _bound(tariff.max_price, currency, ROUND_FLOOR)) < net:
        lines.append(_adjustment(LineKind.MAXIMUM_PRICE, "Maximum session price", cap - net))
    net = _sum(lines, currency)
    vat = Money.zero(currency).rounded()
    if tariff.vat_percent > 0:
        vat = round_money(Fraction(net.amount) * Fraction(tariff.vat_percent) / 100, currency)
        lines.append(LineItem(LineKind.VAT, f"VAT {tariff.vat_percent}%", Decimal(0), "", tariff.vat_percent, vat))
    total_wh = curve.at(curve.last(stop)) - curve.at(curve.first(start))
    return ChargeDetailRecord(
        tariff_id=tariff.id,
        currency=currency,
        started_at=usage.started_at,
        stopped_at=usage.stopped_at,
        charging_ended_at=_dt(charging_end),
        energy_wh=_display(total_wh, 0),
        line_items=tuple(lines),
        net=net,
        vat=vat,
        total=net + vat,
    )


def _split_by_band(
    tou: Sequence[TouBand], start: int, stop: int, charging_end: int, curve: _EnergyCurve, tz: ZoneInfo
) -> tuple[dict[str | None, Fraction], dict[str | None, Fraction]]:
    """Energy (Wh) and charging time (s) per band name (``None``: outside every band), exact."""
    bands = _band_intervals(tou, start, stop, curve, tz)
    energy_wh: dict[str | None, Fraction] = {}
    charging_s: dict[str | None, Fraction] = {}
    lo, hi = min(start, curve.first(start)), max(stop, curve.last(stop))
    cuts = {lo, hi, start, stop, charging_end, *curve.times_within(lo, hi)}
    cuts.update(t for a, b, _ in bands for t in (a, b) if lo < t < hi)
    for a, b in itertools.pairwise(sorted(cuts)):
        band = _band_at(bands, a)
        energy_wh[band] = energy_wh.get(band, Fraction(0)) + curve.at(b) - curve.at(a)
        overlap = min(b, charging_end) - max(a, start)
        if overlap > 0:
            charging_s[band] = charging_s.get(band, Fraction(0)) + Fraction(overlap, 1_000_000)
    return energy_wh, charging_s


def round_money(value: Fraction, currency: str) -> Money:
    """``value`` rounded to ``currency``'s minor unit, half to even, computed exactly."""
    return Money(_round_half_even(value, MINOR_UNITS[check_currency(currency)]), currency)


def _round_half_even(value: Fraction, places: int) -> Decimal:
    scaled = value * 10**places
    whole = scaled.numerator // scaled.denominator
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return Decimal(whole).scaleb(-places)


def _bound(price: Decimal, currency: str, rounding: str) -> Money:
    quantum = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return Money(price.quantize(quantum, rounding=rounding), currency)


def _display(value: Fraction, places: int) -> Decimal:
    return _round_half_even(value, places)


def _line(
    kind: LineKind,
    description: str,
    quantity: Fraction,
    unit: str,
    unit_price: Decimal,
    currency: str,
    band: str | None = None,
) -> LineItem:
    places = {"kWh": 3, "min": 2}.get(unit, 0)
    amount = round_money(quantity * Fraction(unit_price), currency)
    return LineItem(kind, description, _display(quantity, places), unit, unit_price, amount, band)


def _adjustment(kind: LineKind, description: str, amount: Money) -> LineItem:
    return LineItem(kind, description, Decimal(0), "", None, amount)


def _sum(lines: Sequence[LineItem], currency: str) -> Money:
    total = Money.zero(currency).rounded()
    for line in lines:
        total += line.amount
    return total


def _override(band_price: Decimal | None, base: Decimal) -> Decimal:
    return base if band_price is None else band_price


def _label(what: str, band: TouBand | None) -> str:
    return f"{what} ({band.name})" if band else what


# ---------------------------------------------------------------- time


def _us(at: datetime) -> int:
    """Microseconds since the epoch: exact integer time, so splitting is exact."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at}: billing needs timezone-aware times")
    return (at - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _band_intervals(
    bands: Sequence[TouBand], start: int, stop: int, curve: _EnergyCurve, tz: ZoneInfo
) -> list[tuple[int, int, str]]:
    """``[a, b)`` instants (us) when each band is in force, over the session and its readings.

    An instant is in a band when its local wall-clock time and weekday are: each stretch of
    constant UTC offset maps the band's wall-clock interval to instants with that offset. So a
    skipped hour (spring forward) is never priced and a repeated hour (fall back) is priced by
    the wall clock both times it comes round.
    """
    if not bands:
        return []
    lo, hi = min(start, curve.first(start)), max(stop, curve.last(stop))
    pieces = _offset_pieces(lo, hi, tz)
    first_day = _dt(lo + pieces[0][2]).date() - timedelta(days=1)
    last_day = _dt(hi + pieces[-1][2]).date()
    out: list[tuple[int, int, str]] = []
    day = first_day
    while day <= last_day:
        for band in bands:
            if day.weekday() not in band.days:
                continue
            end_day = day + timedelta(days=1) if band.end <= band.start else day
            wall_a = _us(datetime.combine(day, band.start, tzinfo=UTC))
            wall_b = _us(datetime.combine(end_day, band.end, tzinfo=UTC))
            for piece_a, piece_b, offset in pieces:
                a, b = max(wall_a - offset, piece_a), min(wall_b - offset, piece_b)
                if a < b:
                    out.append((a, b, band.name))
        day += timedelta(days=1)
    return out


_PROBE_US = 3_600_000_000
"""Offsets are probed hourly; no zone changes its offset twice within an hour."""


def _offset_pieces(lo: int, hi: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """``[a, b)`` stretches of ``[lo, hi]`` (us) with one UTC offset (us) each; the last is closed."""
    pieces: list[tuple[int, int, int]] = []
    a, offset = lo, _offset_us(lo, tz)
    probe = lo
    while probe < hi:
        nxt = min(probe + _PROBE_US, hi)
        if _offset_us(nxt, tz) != offset:
            left, right = probe, nxt  # offset(left) == offset != offset(right): find the exact change
            while right - left > 1:
                mid = (left + right) // 2
                left, right = (mid, right) if _offset_us(mid, tz) == offset else (left, mid)
            pieces.append((a, right, offset))
            a, offset = right, _offset_us(right, tz)
        probe = nxt
    pieces.append((a, hi + 1, offset))
    return pieces


def _offset_us(at: int, tz: ZoneInfo) -> int:
    delta = _dt(at).astimezone(tz).utcoffset()
    return 0 if delta is None else delta // _US


def _band_at(bands: Sequence[tuple[int, int, str]], at: int) -> str | None:
    # Every band boundary is a cut point, so a segment [a, b) lies wholly inside or outside each band.
    for a, b, name in bands:
        if a <= at < b:
            return name
    return None


class _EnergyCurve:
    """The register as a monotone piecewise-linear function of time (exact)."""

    def __init__(self, readings: Iterable[EnergyReading]) -> None:
        by_time: dict[int, Fraction] = {}
        for r in readings:
            t, v = _us(r.at), Fraction(r.register_wh)
            by_time[t] = max(by_time.get(t, v), v)
        self.times = sorted(by_time)
        self.values: list[Fraction] = []
        highest: Fraction | None = None
        for t in self.times:
            highest = by_time[t] if highest is None else max(highest, by_time[t])
            self.values.append(highest)

    def first(self, default: int) -> int:
        return self.times[0] if self.times else default

    def last(self, default: int) -> int:
        return self.times[-1] if self.times else default

    def times_within(self, lo: int, hi: int) -> list[int]:
        return [t for t in self.times if lo <= t <= hi]

    def at(self, t: int) -> Fraction:
        if not self.times:
            return Fraction(0)
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * Fraction(t - t0, t1 - t0)

    def charging_ended(self, start: int, stop: int) -> int:
        if not self.times:
            return stop
        final = self.values[-1]
        reached = next(t for t, v in zip(self.times, self.values, strict=True) if v == final)
        return min(max(reached, start), stop)


def resolve_tariff_id(
    assignments: Sequence[TariffAssignment], *, site_id: str | None, station_id: str | None, group: str | None
) -> str | None:
    """The tariff in force: the user's group's, else the station's, else the site's default, else none."""
    for scope, scope_id in (
        (AssignmentScope.GROUP, group),
        (AssignmentScope.STATION, station_id),
        (AssignmentScope.SITE, site_id),
    ):
        if scope_id is None:
            continue
        for a in assignments:
            if a.scope is scope and a.scope_id == scope_id:
                return a.tariff_id
    return None
