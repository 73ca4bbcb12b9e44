"""The per-station daily report the operator asked for: hours in use, energy delivered, fees. Pure.

A session counts on the site-local calendar day it *started* (energy, fees and hours alike), so
a report never splits one receipt over two days and each day's rows add up to its receipts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from ems.domain.billing import SessionCost
from ems.domain.money import Money


@dataclass(slots=True)
class StationDay:
    station_id: str
    day: date
    sessions: int = 0
    seconds_in_use: float = 0.0
    energy_wh: Decimal = Decimal(0)
    priced: dict[str, Money] = field(default_factory=dict)
    """Sum of session totals per currency (personal cards included, though not billed)."""
    collected: dict[str, Money] = field(default_factory=dict)
    """What prepaid accounts actually paid, per currency."""

    @property
    def hours_in_use(self) -> Decimal:
        return (Decimal(repr(self.seconds_in_use)) / 3600).quantize(Decimal("0.01"))


def daily_report(
    costs: Iterable[SessionCost], *, timezone_of: Callable[[str], str], first: date, last: date
) -> list[StationDay]:
    """Rows per (station, local day) for days ``first`` .. ``last`` inclusive, sorted by station then day."""
    rows: dict[tuple[str, date], StationDay] = {}
    for cost in costs:
        cdr = cost.cdr
        day = cdr.started_at.astimezone(ZoneInfo(timezone_of(cost.station_id))).date()
        if not first <= day <= last:
            continue
        row = rows.setdefault((cost.station_id, day), StationDay(cost.station_id, day))
        row.sessions += 1
        row.seconds_in_use += (cdr.stopped_at - cdr.started_at).total_seconds()
        row.energy_wh += cdr.energy_wh
        _add(row.priced, cdr.total)
        _add(row.collected, Money.from_minor(cost.captured_minor, cdr.currency))
    return [rows[key] for key in sorted(rows)]


def _add(totals: dict[str, Money], amount: Money) -> None:
    totals[amount.currency] = totals.get(amount.currency, Money.zero(amount.currency).rounded()) + amount
