from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ems.billing.codec import cdr_from_json, cdr_to_json, tariff_from_json, tariff_to_json
from ems.billing.pricing import price_session, resolve_tariff_id
from ems.billing.report import daily_report
from ems.domain.billing import AssignmentScope, EnergyReading, SessionCost, SessionUsage, TariffAssignment
from ems.domain.money import Money
from ems.domain.tariff import Tariff, TouBand

T0 = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Amsterdam
TARIFF = Tariff(
    "t",
    "Night and day",
    "EUR",
    energy_per_kwh=Decimal("0.35"),
    session_fee=Decimal("0.50"),
    tou=(TouBand("night", time(23), time(6, 30, 15), frozenset({0, 6}), energy_per_kwh=Decimal("0.2")),),
    min_price=Decimal("1"),
    vat_percent=Decimal("7.7"),
)


def _cost(session_id: str, start: datetime, hours: int, wh: int, captured: int) -> SessionCost:
    stop = start + timedelta(hours=hours)
    usage = SessionUsage(start, stop, (EnergyReading(start, Decimal(0)), EnergyReading(stop, Decimal(wh))))
    return SessionCost(
        session_id, "CP1", price_session(TARIFF, usage, "Europe/Amsterdam"), stop, captured_minor=captured
    )


def test_tariff_and_cdr_round_trip_through_json() -> None:
    assert tariff_from_json(tariff_to_json(TARIFF)) == TARIFF
    cdr = _cost("s", T0, 2, 7000, 0).cdr
    assert cdr_from_json(cdr_to_json(cdr)) == cdr


def test_group_then_station_then_site() -> None:
    assignments = [
        TariffAssignment(AssignmentScope.SITE, "depot", "site-t"),
        TariffAssignment(AssignmentScope.STATION, "CP1", "station-t"),
        TariffAssignment(AssignmentScope.GROUP, "staff", "staff-t"),
    ]
    assert resolve_tariff_id(assignments, site_id="depot", station_id="CP1", group="staff") == "staff-t"
    assert resolve_tariff_id(assignments, site_id="depot", station_id="CP1", group="guests") == "station-t"
    assert resolve_tariff_id(assignments, site_id="depot", station_id="CP2", group=None) == "site-t"
    assert resolve_tariff_id(assignments, site_id="other", station_id="CP2", group=None) is None


def test_daily_report_buckets_by_site_local_start_day() -> None:
    costs = [
        _cost("a", T0, 2, 7000, 300),  # 23:30 local on 2 March
        _cost("b", T0 + timedelta(hours=2), 1, 3000, 0),  # 01:30 local on 3 March
        _cost("c", T0 + timedelta(days=5), 1, 1000, 100),  # outside the range
    ]
    rows = daily_report(costs, timezone_of=lambda _: "Europe/Amsterdam", first=date(2026, 3, 2), last=date(2026, 3, 3))
    got = [(r.day, r.sessions, r.hours_in_use, r.energy_wh, r.collected["EUR"], r.priced["EUR"]) for r in rows]
    assert got == [
        (date(2026, 3, 2), 1, Decimal("2.00"), Decimal(7000), Money.of("3.00", "EUR"), costs[0].cdr.total),
        (date(2026, 3, 3), 1, Decimal("1.00"), Decimal(3000), Money.of("0.00", "EUR"), costs[1].cdr.total),
    ]
