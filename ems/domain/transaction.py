"""One station transaction message, version-neutral: what the session rules take in (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ems.domain.session import MeterSample


class TxKind(StrEnum):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


@dataclass(frozen=True, slots=True)
class TxUpdate:
    """One transaction message, version-neutral.

    ``transaction_id`` is ``None`` for meter values sent without one (they belong to the
    EVSE's open session). ``evse_id`` is ``None`` when the message does not say (1.6
    StopTransaction, later 2.0.1 events): the session knows. ``meter_wh`` is the register
    at start (STARTED) or stop (ENDED), in Wh. ``samples`` have no ``session_id`` yet.
    ``authorized``: the answer ems gave for ``id_tag`` was Accepted (``None``: no id tag,
    or no answer about it); the session rules use it for the 2.0.1 implicit start.
    """

    kind: TxKind
    station_id: str
    at: datetime
    transaction_id: str | None
    evse_id: int | None
    connector_id: int = 1
    id_tag: str | None = None
    meter_wh: float | None = None
    reason: str | None = None
    samples: tuple[MeterSample, ...] = ()
    seq_no: int | None = None
    remote_start_id: int | None = None
    offline: bool = False
    authorized: bool | None = None


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """NotifyEVChargingNeeds (2.0.1), for the optimizer."""

    evse_id: int
    departure_at: datetime | None
    energy_requested_wh: float | None
    ev_max_power_w: float | None
