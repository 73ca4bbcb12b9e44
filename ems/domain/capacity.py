"""Grid-capacity signals: how much a site or circuit may draw, now and over the coming hours.

Shaped after OSCP 2.0 UpdateGroupCapacityForecast: a signal is a list of blocks, each
with a start, an end and a capacity, in W (total) or in A (per phase, or for every phase
when ``phase`` is ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ems.domain.units import Phase


class CapacityUnit(StrEnum):
    W = "W"
    KW = "KW"
    A = "A"


class SignalKind(StrEnum):
    FORECAST = "forecast"
    """Blocks over the coming hours; replaces the previous forecast for the same target."""
    LIMIT = "limit"
    """An immediate limit, in force from now until its end (or until replaced)."""


class SignalSource(StrEnum):
    MQTT = "mqtt"
    API = "api"
    SIMULATOR = "simulator"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class CapacityBlock:
    start: datetime
    end: datetime
    capacity: float
    unit: CapacityUnit = CapacityUnit.W
    phase: Phase | None = None
    """For ``unit == A``: the phase this limit applies to; ``None`` means every phase."""


@dataclass(frozen=True, slots=True)
class CapacitySignal:
    site_id: str
    kind: SignalKind
    blocks: tuple[CapacityBlock, ...]
    received_at: datetime
    circuit_id: str | None = None
    """``None``: the site's grid connection."""
    message_id: str | None = None
    source: SignalSource = SignalSource.API
