"""Plain values for the grid unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ems.domain.capacity import CapacityBlock, CapacitySignal, CapacityUnit, SignalKind, SignalSource
from ems.domain.site import Circuit, Site
from ems.domain.units import Phase

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def site(**overrides: object) -> Site:
    values: dict[str, object] = {
        "id": "depot",
        "capacity_w": 100_000.0,
        "phase_limits_a": {Phase.L1: 160.0, Phase.L2: 160.0, Phase.L3: 160.0},
        "failsafe_capacity_w": 20_000.0,
        "stale_after_s": 86_400.0,
        "circuits": (Circuit(id="feeder-a", capacity_w=50_000.0),),
    }
    values.update(overrides)
    return Site(**values)  # type: ignore[arg-type]


def block(
    start_min: float,
    end_min: float,
    capacity: float,
    unit: CapacityUnit = CapacityUnit.W,
    phase: Phase | None = None,
) -> CapacityBlock:
    return CapacityBlock(at(start_min), at(end_min), capacity, unit, phase)


def signal(
    *blocks: CapacityBlock,
    kind: SignalKind = SignalKind.FORECAST,
    received_min: float = 0,
    circuit_id: str | None = None,
    message_id: str | None = None,
    site_id: str = "depot",
) -> CapacitySignal:
    return CapacitySignal(
        site_id=site_id,
        kind=kind,
        blocks=blocks,
        received_at=at(received_min),
        circuit_id=circuit_id,
        message_id=message_id,
        source=SignalSource.API,
    )
