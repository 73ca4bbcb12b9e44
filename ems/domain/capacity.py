"""Grid-capacity signals: how much a site or circuit may draw, now and over the coming hours.

Shaped after OSCP 2.0 UpdateGroupCapacityForecast: a signal is a list of blocks, each
with a start, an end and a capacity, in W (total) or in A (per phase, or for every phase
when ``phase`` is ``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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


OPEN_END = datetime(9999, 12, 31, tzinfo=UTC)
"""End of a block that lasts until replaced (an immediate limit given without ``end_time``)."""


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


class LimitSource(StrEnum):
    """Where the capacity in force comes from; on a tie the first listed is named."""

    FAILSAFE = "failsafe"
    LIMIT = "limit"
    FORECAST = "forecast"
    STATIC = "static"


class CapacityChangeReason(StrEnum):
    """Why the capacity in force (or its timeline) changed."""

    NEW_FORECAST = "new_forecast"
    IMMEDIATE_LIMIT = "immediate_limit"
    STALE = "stale"
    """No valid signal for ``stale_after_s``: the fail-safe limit applies."""
    RESUMED = "resumed"
    """A valid signal arrived after a stale period: the fail-safe limit is lifted."""
    BLOCK_STARTED = "block_started"
    BLOCK_EXPIRED = "block_expired"


@dataclass(frozen=True, slots=True)
class CapacityInterval:
    """The capacity in force for one target over ``[start, end)``.

    ``capacity_w`` bounds the total active power in W (``None``: no power bound);
    ``phase_limits_a`` bounds the current per phase in A (a phase absent: no bound). Each
    bound names the source that set it (the lowest source wins where several apply).
    """

    start: datetime
    end: datetime
    capacity_w: float | None
    capacity_source: LimitSource | None
    phase_limits_a: Mapping[Phase, float] = field(default_factory=dict)
    phase_sources: Mapping[Phase, LimitSource] = field(default_factory=dict)
    stale: bool = False

    def same_limits(self, other: CapacityInterval) -> bool:
        """Equal bounds, sources and staleness (the times aside)."""
        return (
            self.capacity_w == other.capacity_w
            and self.capacity_source == other.capacity_source
            and dict(self.phase_limits_a) == dict(other.phase_limits_a)
            and dict(self.phase_sources) == dict(other.phase_sources)
            and self.stale == other.stale
        )


@dataclass(frozen=True, slots=True)
class SiteLoadReading:
    """What a site draws now, from the latest meter samples (the controller's live state)."""

    phase_power_w: Mapping[Phase, float] = field(default_factory=dict)
    """Active power per grid phase in W; a phase absent: not measured."""
    phase_current_a: Mapping[Phase, float] = field(default_factory=dict)
    active_sessions: int = 0
    measured_at: datetime | None = None
    """Time of the oldest sample in the sum; ``None``: nothing measured yet."""

    @property
    def power_w(self) -> float | None:
        return sum(self.phase_power_w.values()) if self.phase_power_w else None


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """The answer to one capacity signal, whichever door (MQTT, API, simulator) it came in by."""

    accepted: bool
    signal: CapacitySignal
    """The signal as applied; for a rejected one, what could be read of it (no blocks)."""
    reply: Mapping[str, Any]
    """The JSON body of the ack (accepted) or error (rejected) message."""
    problems: tuple[str, ...] = ()
    duplicate: bool = False
    in_force: CapacityInterval | None = None


@dataclass(frozen=True, slots=True)
class SignalAudit:
    """One received capacity signal as the audit log keeps it."""

    signal: CapacitySignal
    """For a rejected signal, what could be read of it (no blocks)."""
    accepted: bool
    error: str | None = None
    payload: str | None = None
    """The raw body of a rejected signal, cut to ``MAX_AUDIT_PAYLOAD_CHARS``; ``None`` for an accepted one."""


MAX_AUDIT_PAYLOAD_CHARS = 4096
