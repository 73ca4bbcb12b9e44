"""The simulator's bookkeeping: transactions, EVSEs, intents, counters, queued messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ems.domain.station import ConnectorStatus
from ems.sim.ev import Ev

Factory = Callable[[], Any]
"""Builds a library ``call.*`` payload at send time (so queued messages see ids assigned meanwhile)."""


@dataclass
class TxRef:
    """A transaction as the station knows it; ``id`` is ``None`` until a 1.6 CSMS assigns one."""

    local_id: str
    id: str | None = None
    started_at: datetime | None = None
    id_tag: str | None = None
    seq_no: int = 0


@dataclass
class SimEvse:
    id: int
    status: ConnectorStatus = ConnectorStatus.AVAILABLE
    ev: Ev | None = None
    tx: TxRef | None = None
    register_wh: float = 1_000_000.0
    """Lifetime energy register (Wh); starts non-zero, as on a used charger."""
    power_w: float = 0.0
    last_meter_at: datetime | None = None
    delivered_wh: float = 0.0


class IntentKind(StrEnum):
    """What a remote command asks the station to do after it has answered."""

    START = "start"
    STOP = "stop"


@dataclass
class Intent:
    kind: IntentKind
    evse_id: int
    id_tag: str | None = None
    remote_start_id: int | None = None


@dataclass
class SimStats:
    sent: int = 0
    call_errors: int = 0
    reconnects: int = 0
    started: int = 0
    stopped: int = 0
    boot_status: str | None = None
    last_auth: dict[str, str] = field(default_factory=dict)


class _Answered:
    """A queued message whose answer the station needs (1.6 StartTransaction -> transaction id)."""

    def __init__(self, factory: Factory, on_answer: Callable[[Any], None]) -> None:
        self.factory = factory
        self.on_answer = on_answer

    def __call__(self) -> Any:
        return self.factory()
