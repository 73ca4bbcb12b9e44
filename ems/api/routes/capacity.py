"""Grid capacity through the API, for operators without MQTT: the same signals, the same code path.

``POST /api/v1/sites/{site}/capacity`` takes the body of the MQTT capacity topics (see
docs/grid.md); ``kind`` (``forecast`` | ``limit``) and ``circuit_id`` come from the query or
the body. ``GET`` shows the effective timeline and where each bound comes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ems.api.auth import Analyst, Operator, Services
from ems.api.problems import problem
from ems.domain.capacity import CapacitySignal, LimitSource, SignalKind, SignalSource
from ems.errors import NotAvailable, NotFound
from ems.grid.payload import EXAMPLE_FORECAST, interval_to_json, iso_or_open
from ems.ports.grid import CapacitySignals

router = APIRouter(prefix="/api/v1/sites", tags=["capacity"])

MAX_HORIZON_S = 7 * 86_400.0


class IntervalPublic(BaseModel):
    start: datetime
    end: datetime | None
    """``null``: until further notice."""
    capacity_w: float | None
    capacity_source: LimitSource | None
    phase_limits_a: dict[str, float]
    phase_sources: dict[str, LimitSource]
    stale: bool


class BlockPublic(BaseModel):
    start: datetime
    end: datetime | None
    capacity: float
    unit: str
    phase: str | None


class SignalPublic(BaseModel):
    kind: SignalKind
    message_id: str | None
    source: SignalSource
    received_at: datetime
    blocks: list[BlockPublic]

    @classmethod
    def of(cls, signal: CapacitySignal | None) -> SignalPublic | None:
        if signal is None:
            return None
        return cls(
            kind=signal.kind,
            message_id=signal.message_id,
            source=signal.source,
            received_at=signal.received_at,
            blocks=[
                BlockPublic(
                    start=b.start,
                    end=datetime.fromisoformat(end) if (end := iso_or_open(b.end)) else None,
                    capacity=b.capacity,
                    unit=b.unit.value,
                    phase=b.phase.value if b.phase else None,
                )
                for b in signal.blocks
            ],
        )


class StaticPublic(BaseModel):
    capacity_w: float | None
    phase_limits_a: dict[str, float]
    failsafe_capacity_w: float | None
    """Site connection only; applies while the site is stale."""
    stale_after_s: float


class CapacityPublic(BaseModel):
    site_id: str
    circuit_id: str | None
    stale: bool
    in_force: IntervalPublic
    timeline: list[IntervalPublic]
    static: StaticPublic
    forecast: SignalPublic | None
    limit: SignalPublic | None


class CapacityAck(BaseModel):
    accepted: bool
    duplicate: bool
    message_id: str | None
    site_id: str
    circuit_id: str | None
    kind: SignalKind
    blocks: int
    received_at: datetime
    in_force: IntervalPublic


class SignalRecordPublic(BaseModel):
    accepted: bool
    error: str | None
    """Every problem, ``; ``-separated, for a rejected signal; a note for a duplicate."""
    payload: str | None
    """The raw body of a rejected signal (first 4,096 characters)."""
    signal: SignalPublic
    circuit_id: str | None


def _capacity(services: Services) -> CapacitySignals:
    if services.capacity is None:
        raise NotAvailable("grid capacity signals are not enabled in this process")
    return services.capacity


@router.post(
    "/{site_id}/capacity",
    response_model=CapacityAck,
    summary="Send a capacity forecast or immediate limit (the MQTT body, OSCP UpdateGroupCapacityForecast shape)",
    responses={422: {"description": "rejected: every problem listed; nothing applied"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": EXAMPLE_FORECAST}},
            "description": "See docs/grid.md and docs/schemas/capacity-signal.schema.json",
        }
    },
)
async def post_capacity(
    site_id: str,
    request: Request,
    services: Services,
    _: Operator,
    kind: Annotated[SignalKind | None, Query(description="forecast (default) or limit")] = None,
    circuit_id: Annotated[str | None, Query(description="a circuit of the site; absent: the site connection")] = None,
) -> CapacityAck | JSONResponse:
    capacity = _capacity(services)
    body = await request.body()
    outcome = await capacity.submit(body, site_id=site_id, source=SignalSource.API, kind=kind, circuit_id=circuit_id)
    if outcome.accepted:
        return CapacityAck.model_validate(outcome.reply)
    unknown_site = site_id not in capacity.site_ids()
    return problem(
        404 if unknown_site else 422,
        "Not found" if unknown_site else "Capacity signal rejected",
        "; ".join(outcome.problems) if unknown_site else f"{len(outcome.problems)} problem(s); nothing applied",
        errors_list=[{"field": "", "message": p} for p in outcome.problems],
    )


@router.get("/{site_id}/capacity", summary="The capacity in force and its timeline, with the source of every bound")
async def get_capacity(
    site_id: str,
    services: Services,
    _: Analyst,
    circuit_id: Annotated[str | None, Query(description="a circuit of the site; absent: the site connection")] = None,
    horizon_s: Annotated[float, Query(gt=0, le=MAX_HORIZON_S, description="timeline length from now")] = 86_400.0,
) -> CapacityPublic:
    capacity = _capacity(services)
    site = services.site(site_id)
    if site is None:
        raise NotFound(f"no site {site_id!r}")
    timeline = capacity.timeline(site_id, circuit_id, horizon_s=horizon_s)
    if circuit_id is None:
        static_w, static_a = site.capacity_w, site.phase_limits_a
    else:
        circuit = site.circuit(circuit_id)
        static_w, static_a = circuit.capacity_w, circuit.phase_limits_a
    intervals = [IntervalPublic.model_validate(interval_to_json(i)) for i in timeline]
    return CapacityPublic(
        site_id=site_id,
        circuit_id=circuit_id,
        stale=timeline[0].stale,
        in_force=IntervalPublic.model_validate(interval_to_json(capacity.in_force(site_id, circuit_id))),
        timeline=intervals,
        static=StaticPublic(
            capacity_w=static_w,
            phase_limits_a={p.value: a for p, a in static_a.items()},
            failsafe_capacity_w=site.failsafe_capacity_w if circuit_id is None else None,
            stale_after_s=site.stale_after_s,
        ),
        forecast=SignalPublic.of(capacity.latest(site_id, circuit_id, SignalKind.FORECAST)),
        limit=SignalPublic.of(capacity.latest(site_id, circuit_id, SignalKind.LIMIT)),
    )


@router.get(
    "/{site_id}/capacity/signals",
    summary="The audit log: every capacity signal received for the site, accepted or rejected, newest first",
)
async def list_signals(
    site_id: str,
    services: Services,
    _: Analyst,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SignalRecordPublic]:
    if services.site(site_id) is None:
        raise NotFound(f"no site {site_id!r}")
    records = await services.storage.signals.audit(site_id, limit=limit)
    out: list[SignalRecordPublic] = []
    for r in records:
        signal = SignalPublic.of(r.signal)
        assert signal is not None
        out.append(
            SignalRecordPublic(
                accepted=r.accepted, error=r.error, payload=r.payload, signal=signal, circuit_id=r.signal.circuit_id
            )
        )
    return out
