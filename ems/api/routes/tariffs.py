"""Tariffs (CRUD) and their assignment to a site (default), a station, or a user group."""

from __future__ import annotations

import uuid
from datetime import time
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import Analyst, Operator, Services
from ems.api.billing_support import MONEY_PATTERN, BillingDep
from ems.billing.codec import tariff_to_json
from ems.domain.billing import AssignmentScope, TariffAssignment
from ems.domain.tariff import ALL_DAYS, Tariff, TouBand, tariff_problems
from ems.errors import InvalidInput, NotFound

router = APIRouter(tags=["tariffs"])

TariffId = Annotated[str, Path(min_length=1, max_length=64)]
Price = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["0.30"])]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["17:00"])]


class TouBandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    start: ClockTime
    end: ClockTime = Field(description="At or before start: the band runs past midnight; 00:00 is midnight")
    days: list[int] = Field(default_factory=lambda: sorted(ALL_DAYS), description="0 = Monday ... 6 = Sunday")
    energy_per_kwh: Price | None = None
    time_per_minute: Price | None = None


class TariffIn(BaseModel):
    """All prices optional but the currency; prices are net, as decimal strings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(min_length=1, max_length=8)
    energy_per_kwh: Price | None = None
    time_per_minute: Price | None = Field(default=None, description="Per minute of charging")
    parking_per_minute: Price | None = Field(default=None, description="Per minute plugged in")
    session_fee: Price | None = None
    idle_per_minute: Price | None = Field(default=None, description="Per minute plugged in after charging ended")
    idle_grace_minutes: int = Field(default=0, ge=0, le=24 * 60)
    tou: list[TouBandIn] = Field(default_factory=list)
    min_price: Price | None = None
    max_price: Price | None = None
    vat_percent: Price | None = None
    description: str = Field(default="", max_length=1000)


class TariffAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tariff_id: str = Field(min_length=1, max_length=64)


def _dec(value: str | None, default: Decimal | None = Decimal(0)) -> Decimal | None:
    return default if value is None else Decimal(value)


def to_tariff(tariff_id: str, body: TariffIn) -> Tariff:
    """The domain tariff, or ``InvalidInput`` (422) listing every problem (overlapping bands named)."""
    zero = Decimal(0)
    tariff = Tariff(
        id=tariff_id,
        name=body.name,
        currency=body.currency,
        energy_per_kwh=_dec(body.energy_per_kwh) or zero,
        time_per_minute=_dec(body.time_per_minute) or zero,
        parking_per_minute=_dec(body.parking_per_minute) or zero,
        session_fee=_dec(body.session_fee) or zero,
        idle_per_minute=_dec(body.idle_per_minute) or zero,
        idle_grace_minutes=body.idle_grace_minutes,
        tou=tuple(
            TouBand(
                name=b.name,
                start=time.fromisoformat(b.start),
                end=time.fromisoformat(b.end),
                days=frozenset(b.days),
                energy_per_kwh=_dec(b.energy_per_kwh, None),
                time_per_minute=_dec(b.time_per_minute, None),
            )
            for b in body.tou
        ),
        min_price=_dec(body.min_price, None),
        max_price=_dec(body.max_price, None),
        vat_percent=_dec(body.vat_percent) or zero,
        description=body.description,
    )
    problems = tariff_problems(tariff)
    if problems:
        raise InvalidInput("invalid tariff", problems)
    return tariff


async def _get(billing: BillingDep, tariff_id: str) -> Tariff:
    tariff = await billing.service.billing.tariffs.get(tariff_id)
    if tariff is None:
        raise NotFound(f"no tariff {tariff_id!r}")
    return tariff


@router.post("/api/v1/tariffs", status_code=status.HTTP_201_CREATED, summary="Create a tariff")
async def create_tariff(body: TariffIn, billing: BillingDep, _: Operator) -> dict[str, object]:
    tariff = to_tariff(uuid.uuid4().hex, body)
    await billing.service.billing.tariffs.add(tariff)
    return tariff_to_json(tariff)


@router.get("/api/v1/tariffs", summary="All tariffs")
async def list_tariffs(billing: BillingDep, _: Analyst) -> list[dict[str, object]]:
    return [tariff_to_json(t) for t in await billing.service.billing.tariffs.all()]


@router.get("/api/v1/tariffs/{tariff_id}", summary="One tariff")
async def get_tariff(tariff_id: TariffId, billing: BillingDep, _: Analyst) -> dict[str, object]:
    return tariff_to_json(await _get(billing, tariff_id))


@router.put("/api/v1/tariffs/{tariff_id}", summary="Replace a tariff (sessions priced already keep their receipts)")
async def replace_tariff(tariff_id: TariffId, body: TariffIn, billing: BillingDep, _: Operator) -> dict[str, object]:
    await _get(billing, tariff_id)
    tariff = to_tariff(tariff_id, body)
    await billing.service.billing.tariffs.update(tariff)
    return tariff_to_json(tariff)


@router.delete(
    "/api/v1/tariffs/{tariff_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unassigned tariff"
)
async def delete_tariff(tariff_id: TariffId, billing: BillingDep, _: Operator) -> None:
    if not await billing.service.billing.tariffs.delete(tariff_id):
        raise NotFound(f"no tariff {tariff_id!r}")


@router.get("/api/v1/tariff-assignments", summary="Which tariff applies where (group > station > site)")
async def assignments(billing: BillingDep, _: Analyst) -> list[dict[str, str]]:
    return [
        {"scope": a.scope.value, "scope_id": a.scope_id, "tariff_id": a.tariff_id}
        for a in await billing.service.billing.tariffs.assignments()
    ]


async def _assign(billing: BillingDep, scope: AssignmentScope, scope_id: str, body: TariffAssign) -> dict[str, str]:
    await billing.service.billing.tariffs.assign(TariffAssignment(scope, scope_id, body.tariff_id))
    return {"scope": scope.value, "scope_id": scope_id, "tariff_id": body.tariff_id}


@router.put("/api/v1/sites/{site_id}/tariff", summary="Make a tariff the site's default")
async def assign_site(
    site_id: Annotated[str, Path(min_length=1)],
    body: TariffAssign,
    services: Services,
    billing: BillingDep,
    _: Operator,
) -> dict[str, str]:
    if services.site(site_id) is None:
        raise NotFound(f"no site {site_id!r}")
    return await _assign(billing, AssignmentScope.SITE, site_id, body)


@router.put("/api/v1/stations/{station_id}/tariff", summary="Give one station its own tariff")
async def assign_station(
    station_id: Annotated[str, Path(min_length=1)],
    body: TariffAssign,
    services: Services,
    billing: BillingDep,
    _: Operator,
) -> dict[str, str]:
    if await services.storage.stations.get(station_id) is None:
        raise NotFound(f"no station {station_id!r}")
    return await _assign(billing, AssignmentScope.STATION, station_id, body)


@router.put("/api/v1/user-groups/{group}/tariff", summary="Give a user group its own tariff")
async def assign_group(
    group: Annotated[str, Path(min_length=1, max_length=64)], body: TariffAssign, billing: BillingDep, _: Operator
) -> dict[str, str]:
    return await _assign(billing, AssignmentScope.GROUP, group, body)


@router.delete(
    "/api/v1/tariff-assignments/{scope}/{scope_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an assignment",
)
async def unassign(scope: AssignmentScope, scope_id: str, billing: BillingDep, _: Operator) -> None:
    if not await billing.service.billing.tariffs.unassign(scope, scope_id):
        raise NotFound(f"no tariff assigned to {scope.value} {scope_id!r}")
