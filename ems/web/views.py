"""What the driver pages say: prices in words, the charger's state, a charge's progress. No I/O.

Every sentence goes through ``Texts.gettext`` (``_`` below only marks strings for extraction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ems.domain.billing import LineKind
from ems.domain.station import ConnectorStatus
from ems.domain.tariff import Tariff
from ems.web.i18n import Texts

IN_USE = frozenset(
    {
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
        ConnectorStatus.OCCUPIED,
        ConnectorStatus.RESERVED,
    }
)


def price_lines(t: Texts, tariff: Tariff) -> list[str]:
    """The tariff in force, one sentence per component; prices are net, VAT named last."""
    cur = tariff.currency
    out: list[str] = []
    if tariff.energy_per_kwh:
        out.append(t.gettext("{price} per kWh", price=t.money(tariff.energy_per_kwh, cur, exact=True)))
    if tariff.time_per_minute:
        out.append(t.gettext("{price} per minute of charging", price=t.money(tariff.time_per_minute, cur, exact=True)))
    if tariff.parking_per_minute:
        out.append(
            t.gettext("{price} per minute plugged in", price=t.money(tariff.parking_per_minute, cur, exact=True))
        )
    if tariff.session_fee:
        out.append(t.gettext("{price} per session", price=t.money(tariff.session_fee, cur, exact=True)))
    if tariff.idle_per_minute:
        out.append(
            t.gettext(
                "Idle fee: {price} per minute, starting {minutes} minutes after charging ends",
                price=t.money(tariff.idle_per_minute, cur, exact=True),
                minutes=tariff.idle_grace_minutes,
            )
        )
    for band in tariff.tou:
        if band.energy_per_kwh is not None:
            out.append(
                t.gettext(
                    "{start}-{end}: {price} per kWh",
                    start=band.start.strftime("%H:%M"),
                    end=band.end.strftime("%H:%M"),
                    price=t.money(band.energy_per_kwh, cur, exact=True),
                )
            )
    if not out:
        out.append(t.gettext("Charging here is free."))
    if tariff.vat_percent:
        out.append(t.gettext("Prices exclude VAT of {percent}%.", percent=_percent(tariff.vat_percent)))
    return out


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(frozen=True, slots=True)
class ChargerState:
    can_start: bool
    label: str
    """The connector's state in a few words."""
    message: str | None
    """What the driver should know or do, when they cannot start."""
    tone: str
    """``ok``, ``busy`` or ``bad``: the colour of the status badge."""


def charger_state(t: Texts, *, online: bool, status: ConnectorStatus | None, error_code: str | None) -> ChargerState:
    if not online:
        return ChargerState(
            False,
            t.gettext("Offline"),
            t.gettext("This charger is offline right now. Please try another charger, or come back later."),
            "bad",
        )
    if status is ConnectorStatus.FAULTED:
        why = f" ({error_code})" if error_code and error_code != "NoError" else ""
        return ChargerState(
            False,
            t.gettext("Fault") + why,
            t.gettext("This charger reports a fault. Please use another charger."),
            "bad",
        )
    if status is ConnectorStatus.UNAVAILABLE:
        return ChargerState(
            False,
            t.gettext("Out of service"),
            t.gettext("This charger is out of service. Please use another charger."),
            "bad",
        )
    if status in IN_USE:
        return ChargerState(
            False,
            t.gettext("In use"),
            t.gettext("Someone else is using this charger. Please use another one, or wait until it is free."),
            "busy",
        )
    if status is ConnectorStatus.PREPARING:
        return ChargerState(True, t.gettext("Cable plugged in"), None, "ok")
    return ChargerState(True, t.gettext("Available"), None, "ok")


def charge_state_label(t: Texts, state: str, status: ConnectorStatus | None) -> str:
    """A charge (``pending``/``charging``/``completed``/``cancelled``) and its connector, in words."""
    if state == "pending":
        return t.gettext("Starting: waiting for the charger")
    if state == "completed":
        return t.gettext("Finished")
    if state == "cancelled":
        return t.gettext("Cancelled")
    if status is ConnectorStatus.SUSPENDED_EV:
        return t.gettext("Paused by the car")
    if status is ConnectorStatus.SUSPENDED_EVSE:
        return t.gettext("Paused by the charger")
    if status in (ConnectorStatus.PREPARING, ConnectorStatus.AVAILABLE):
        return t.gettext("Waiting for the car")
    if status is ConnectorStatus.FINISHING:
        return t.gettext("Finishing")
    return t.gettext("Charging")


def line_label(t: Texts, kind: LineKind, description: str) -> str:
    labels = {
        LineKind.SESSION_FEE: t.gettext("Session fee"),
        LineKind.ENERGY: t.gettext("Energy"),
        LineKind.CHARGING_TIME: t.gettext("Charging time"),
        LineKind.PARKING_TIME: t.gettext("Time plugged in"),
        LineKind.IDLE_TIME: t.gettext("Idle fee"),
        LineKind.MINIMUM_PRICE: t.gettext("Minimum price"),
        LineKind.MAXIMUM_PRICE: t.gettext("Price cap"),
        LineKind.VAT: t.gettext("VAT"),
    }
    return labels.get(kind, description)


def duration(t: Texts, seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return t.gettext("{hours} h {minutes} min", hours=hours, minutes=minutes)
    return t.gettext("{minutes} min", minutes=minutes)


def elapsed_s(started_at: datetime, until: datetime) -> float:
    return max(0.0, (until - started_at).total_seconds())
