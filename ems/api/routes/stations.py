"""Stations: register, list, change, remove."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ems.api.auth import Analyst, Operator, Services
from ems.domain.station import ConnectorStatus, Station
from ems.errors import InvalidInput, NotFound
from ems.security import hash_password, password_problem
from ems.services.admin import register_station

router = APIRouter(prefix="/api/v1/stations", tags=["stations"])

StationId = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")]
"""OCPP: the identity is at most 48 characters and travels in the URL path, so no '/' or '%'."""


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")
    password: str | None = Field(default=None, description="HTTP Basic password (security profile 1)")
    site_id: str | None = None
    circuit_id: str | None = None

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and (problem := password_problem(value)):
            raise ValueError(problem)
        return value


class StationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, description='new password; send null to keep, "" to remove')
    site_id: str | None = None
    circuit_id: str | None = None

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value and (problem := password_problem(value)):
            raise ValueError(problem)
        return value


class StationPublic(BaseModel):
    id: str
    has_password: bool
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    ocpp_version: str | None
    site_id: str | None
    circuit_id: str | None
    registered_at: datetime | None
    last_seen_at: datetime | None
    online: bool

    @classmethod
    def of(cls, s: Station) -> StationPublic:
        return cls(
            id=s.id,
            has_password=s.password_hash is not None,
            vendor=s.vendor,
            model=s.model,
            serial_number=s.serial_number,
            firmware_version=s.firmware_version,
            ocpp_version=s.ocpp_version.value if s.ocpp_version else None,
            site_id=s.site_id,
            circuit_id=s.circuit_id,
            registered_at=s.registered_at,
            last_seen_at=s.last_seen_at,
            online=s.online,
        )


class StatusRecordPublic(BaseModel):
    evse_id: int
    connector_id: int
    status: ConnectorStatus
    at: datetime
    error_code: str | None
    info: str | None


def _check_placement(services: Services, site_id: str | None, circuit_id: str | None) -> None:
    problems: list[str] = []
    site = services.site(site_id) if site_id else None
    if site_id and site is None:
        problems.append(f"site_id: unknown site {site_id!r}")
    if circuit_id:
        if site is None:
            problems.append("circuit_id: needs a known site_id")
        elif all(c.id != circuit_id for c in site.circuits):
            problems.append(f"circuit_id: site {site_id} has no circuit {circuit_id!r}")
    if problems:
        raise InvalidInput("invalid station placement", problems)


@router.get("", summary="All stations")
async def list_stations(services: Services, _: Analyst) -> list[StationPublic]:
    return [StationPublic.of(s) for s in await services.storage.stations.all()]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a station")
async def create_station(body: StationCreate, services: Services, _: Operator) -> StationPublic:
    _check_placement(services, body.site_id, body.circuit_id)
    station = await register_station(
        services.storage.stations,
        services.clock,
        body.id,
        password=body.password,
        site_id=body.site_id,
        circuit_id=body.circuit_id,
    )
    return StationPublic.of(station)


async def _get(services: Services, station_id: str) -> Station:
    station = await services.storage.stations.get(station_id)
    if station is None:
        raise NotFound(f"no station {station_id!r}")
    return station


@router.get("/{station_id}", summary="One station")
async def get_station(station_id: StationId, services: Services, _: Analyst) -> StationPublic:
    return StationPublic.of(await _get(services, station_id))


@router.patch("/{station_id}", summary="Change a station's password or placement")
async def update_station(station_id: StationId, body: StationUpdate, services: Services, _: Operator) -> StationPublic:
    station = await _get(services, station_id)
    fields = body.model_fields_set
    site_id = body.site_id if "site_id" in fields else station.site_id
    circuit_id = body.circuit_id if "circuit_id" in fields else station.circuit_id
    _check_placement(services, site_id, circuit_id)
    password_hash = station.password_hash
    if "password" in fields and body.password is not None:
        password_hash = hash_password(body.password) if body.password else None
    updated = replace(station, site_id=site_id, circuit_id=circuit_id, password_hash=password_hash)
    await services.storage.stations.update(updated)
    return StationPublic.of(updated)


@router.delete("/{station_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a station")
async def delete_station(station_id: StationId, services: Services, _: Operator) -> None:
    if not await services.storage.stations.delete(station_id):
        raise NotFound(f"no station {station_id!r}")


@router.get("/{station_id}/status-history", summary="Connector status changes, newest first")
async def status_history(
    station_id: StationId, services: Services, _: Analyst, limit: int = 100
) -> list[StatusRecordPublic]:
    await _get(services, station_id)
    records = await services.storage.stations.status_history(station_id, limit=max(1, min(limit, 1000)))
    return [
        StatusRecordPublic(
            evse_id=r.evse_id,
            connector_id=r.connector_id,
            status=r.status,
            at=r.at,
            error_code=r.error_code,
            info=r.info,
        )
        for r in records
    ]
