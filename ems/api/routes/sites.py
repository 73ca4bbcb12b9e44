"""Sites and their circuit trees, as configured in the site file."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ems.api.auth import Analyst, Services
from ems.domain.site import Site
from ems.errors import NotFound

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


class TransformerPublic(BaseModel):
    connection: str
    turns_ratio: float
    primary_phase_limits_a: dict[str, float]


class CircuitPublic(BaseModel):
    id: str
    name: str
    parent_id: str | None
    capacity_w: float | None
    phase_limits_a: dict[str, float]
    transformer: TransformerPublic | None = None


class EvsePublic(BaseModel):
    evse_id: int
    phases: int
    phase_map: list[str]
    voltage_v: float
    min_current_a: float
    max_current_a: float
    max_power_w: float
    lines: list[str] | None = None
    """Set for an EVSE wired line-to-line (its current flows from the first line to the second)."""


class StationPlacement(BaseModel):
    id: str
    circuit_id: str | None
    evses: list[EvsePublic]


class SitePublic(BaseModel):
    id: str
    name: str
    timezone: str
    capacity_w: float | None
    phase_limits_a: dict[str, float]
    failsafe_capacity_w: float | None
    stale_after_s: float
    circuits: list[CircuitPublic]
    stations: list[StationPlacement]

    @classmethod
    def of(cls, site: Site) -> SitePublic:
        return cls(
            id=site.id,
            name=site.name,
            timezone=site.timezone,
            capacity_w=site.capacity_w,
            phase_limits_a={str(p): a for p, a in site.phase_limits_a.items()},
            failsafe_capacity_w=site.failsafe_capacity_w,
            stale_after_s=site.stale_after_s,
            circuits=[
                CircuitPublic(
                    id=c.id,
                    name=c.name,
                    parent_id=c.parent_id,
                    capacity_w=c.capacity_w,
                    phase_limits_a={str(p): a for p, a in c.phase_limits_a.items()},
                    transformer=None
                    if c.transformer is None
                    else TransformerPublic(
                        connection=c.transformer.connection,
                        turns_ratio=c.transformer.turns_ratio,
                        primary_phase_limits_a={str(p): a for p, a in c.transformer.primary_phase_limits_a.items()},
                    ),
                )
                for c in site.circuits
            ],
            stations=[
                StationPlacement(
                    id=s.id,
                    circuit_id=s.circuit_id,
                    evses=[
                        EvsePublic(
                            evse_id=e.evse_id,
                            phases=e.phases,
                            phase_map=[str(p) for p in e.phase_map],
                            voltage_v=e.voltage_v,
                            min_current_a=e.min_current_a,
                            max_current_a=e.max_current_a,
                            max_power_w=e.max_power_w,
                            lines=None if e.lines is None else [str(p) for p in e.lines],
                        )
                        for e in s.evses
                    ],
                )
                for s in site.stations
            ],
        )


@router.get("", summary="All sites (from the site file; without one, the single site `default`)")
async def list_sites(services: Services, _: Analyst) -> list[SitePublic]:
    return [SitePublic.of(s) for s in services.sites]


@router.get("/{site_id}", summary="One site with its circuit tree and station placement")
async def get_site(site_id: str, services: Services, _: Analyst) -> SitePublic:
    site = services.site(site_id)
    if site is None:
        raise NotFound(f"no site {site_id!r}")
    return SitePublic.of(site)
