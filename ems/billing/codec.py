"""Tariffs and charge detail records to and from plain JSON values (money and prices as decimal strings).

Used by storage (a JSON column) and the API. Pure.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Any

from ems.domain.billing import ChargeDetailRecord, LineItem, LineKind
from ems.domain.money import Money
from ems.domain.tariff import ALL_DAYS, Tariff, TouBand


def tariff_to_json(tariff: Tariff) -> dict[str, Any]:
    return {
        "id": tariff.id,
        "name": tariff.name,
        "currency": tariff.currency,
        "energy_per_kwh": str(tariff.energy_per_kwh),
        "time_per_minute": str(tariff.time_per_minute),
        "parking_per_minute": str(tariff.parking_per_minute),
        "session_fee": str(tariff.session_fee),
        "idle_per_minute": str(tariff.idle_per_minute),
        "idle_grace_minutes": tariff.idle_grace_minutes,
        "tou": [_band_to_json(b) for b in tariff.tou],
        "min_price": _opt(tariff.min_price),
        "max_price": _opt(tariff.max_price),
        "vat_percent": str(tariff.vat_percent),
        "description": tariff.description,
    }


def tariff_from_json(data: dict[str, Any]) -> Tariff:
    return Tariff(
        id=data["id"],
        name=data["name"],
        currency=data["currency"],
        energy_per_kwh=Decimal(data["energy_per_kwh"]),
        time_per_minute=Decimal(data["time_per_minute"]),
        parking_per_minute=Decimal(data["parking_per_minute"]),
        session_fee=Decimal(data["session_fee"]),
        idle_per_minute=Decimal(data["idle_per_minute"]),
        idle_grace_minutes=int(data["idle_grace_minutes"]),
        tou=tuple(_band_from_json(b) for b in data["tou"]),
        min_price=_dec(data.get("min_price")),
        max_price=_dec(data.get("max_price")),
        vat_percent=Decimal(data["vat_percent"]),
        description=data.get("description", ""),
    )


def _band_to_json(band: TouBand) -> dict[str, Any]:
    return {
        "name": band.name,
        "start": _clock(band.start),
        "end": _clock(band.end),
        "days": sorted(band.days),
        "energy_per_kwh": _opt(band.energy_per_kwh),
        "time_per_minute": _opt(band.time_per_minute),
    }


def _band_from_json(data: dict[str, Any]) -> TouBand:
    return TouBand(
        name=data["name"],
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
        days=frozenset(data.get("days", sorted(ALL_DAYS))),
        energy_per_kwh=_dec(data.get("energy_per_kwh")),
        time_per_minute=_dec(data.get("time_per_minute")),
    )


def cdr_to_json(cdr: ChargeDetailRecord) -> dict[str, Any]:
    """The charge detail record as the API and receipts show it (money rounded, as decimal strings)."""
    return {
        "tariff_id": cdr.tariff_id,
        "currency": cdr.currency,
        "started_at": cdr.started_at.isoformat(),
        "stopped_at": cdr.stopped_at.isoformat(),
        "charging_ended_at": cdr.charging_ended_at.isoformat(),
        "energy_wh": str(cdr.energy_wh),
        "line_items": [
            {
                "kind": line.kind.value,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit": line.unit,
                "unit_price": _opt(line.unit_price),
                "amount": line.amount.as_str(),
                "band": line.band,
            }
            for line in cdr.line_items
        ],
        "net": cdr.net.as_str(),
        "vat": cdr.vat.as_str(),
        "total": cdr.total.as_str(),
    }


def cdr_from_json(data: dict[str, Any]) -> ChargeDetailRecord:
    currency = data["currency"]
    return ChargeDetailRecord(
        tariff_id=data["tariff_id"],
        currency=currency,
        started_at=datetime.fromisoformat(data["started_at"]),
        stopped_at=datetime.fromisoformat(data["stopped_at"]),
        charging_ended_at=datetime.fromisoformat(data["charging_ended_at"]),
        energy_wh=Decimal(data["energy_wh"]),
        line_items=tuple(
            LineItem(
                kind=LineKind(line["kind"]),
                description=line["description"],
                quantity=Decimal(line["quantity"]),
                unit=line["unit"],
                unit_price=_dec(line["unit_price"]),
                amount=Money.of(line["amount"], currency),
                band=line["band"],
            )
            for line in data["line_items"]
        ),
        net=Money.of(data["net"], currency),
        vat=Money.of(data["vat"], currency),
        total=Money.of(data["total"], currency),
    )


def _clock(t: time) -> str:
    return t.isoformat(timespec="seconds" if t.second else "minutes")


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
