"""The quarantine: inbound messages ems could not apply, with the reason (operator role)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ems.api.auth import Operator, Services
from ems.domain.quarantine import QuarantinedMessage, QuarantineSource

router = APIRouter(prefix="/api/v1/ocpp", tags=["ocpp"])

MAX_PAGE = 500


class QuarantinedPublic(BaseModel):
    id: str
    source: QuarantineSource
    station_id: str | None
    action: str
    payload: str
    """The message as JSON text (cut to 64 KiB)."""
    reason: str
    received_at: datetime
    quarantined_at: datetime

    @classmethod
    def of(cls, q: QuarantinedMessage) -> QuarantinedPublic:
        return cls(
            id=q.id,
            source=q.source,
            station_id=q.station_id,
            action=q.action,
            payload=q.payload,
            reason=q.reason,
            received_at=q.received_at,
            quarantined_at=q.quarantined_at,
        )


class QuarantinePage(BaseModel):
    total: int
    """Entries matching ``source`` (all pages)."""
    limit: int
    offset: int
    items: list[QuarantinedPublic]
    """Newest first."""


@router.get("/quarantine", summary="Messages that could not be applied, newest first (paginated)")
async def list_quarantine(
    services: Services,
    _: Operator,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    source: Annotated[QuarantineSource | None, Query(description="ocpp or billing; absent: both")] = None,
) -> QuarantinePage:
    store = services.storage.quarantine
    items = await store.list(limit=limit, offset=offset, source=source)
    return QuarantinePage(
        total=await store.count(source),
        limit=limit,
        offset=offset,
        items=[QuarantinedPublic.of(q) for q in items],
    )
