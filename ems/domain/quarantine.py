"""Quarantine: an inbound message (or a step of its processing) that could not be applied.

Stored with its reason instead of being retried forever or crashing the process; visible to
operators (``GET /api/v1/ocpp/quarantine``) and counted. The id is a natural key (a hash of
what was received), so re-quarantining the same message after a restart stores it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MAX_PAYLOAD_CHARS = 65_536
"""Payload text kept, cut beyond 64 KiB (a frame is at most 256 KiB; the reason says what was wrong)."""
MAX_REASON_CHARS = 1_000


class QuarantineSource(StrEnum):
    OCPP = "ocpp"
    """A journaled station message the applier could not apply."""
    BILLING = "billing"
    """A session event billing could not settle."""


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    id: str
    source: QuarantineSource
    station_id: str | None
    action: str
    payload: str
    """The message as JSON text (non-ASCII escaped), cut to ``MAX_PAYLOAD_CHARS``."""
    reason: str
    received_at: datetime
    quarantined_at: datetime


def quarantined(
    source: QuarantineSource,
    *,
    station_id: str | None,
    action: str,
    payload: str,
    reason: str,
    received_at: datetime,
    quarantined_at: datetime,
) -> QuarantinedMessage:
    """A quarantine entry whose id is the hash of (source, station, action, payload, receive time)."""
    key = "\x1f".join((source.value, station_id or "", action, payload, received_at.isoformat()))
    return QuarantinedMessage(
        id=hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32],
        source=source,
        station_id=station_id,
        action=action,
        payload=payload[:MAX_PAYLOAD_CHARS],
        reason=reason[:MAX_REASON_CHARS],
        received_at=received_at,
        quarantined_at=quarantined_at,
    )
