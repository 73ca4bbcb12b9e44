"""Electrical units and conversions.

Power and current are related per phase: ``power_w = current_a * voltage_v * phases``,
where ``voltage_v`` is the phase-to-neutral voltage (230 V in Europe) and ``phases``
is the number of phases the EVSE draws on (1 or 3). Unity power factor is assumed,
as OCPP charging profiles and IEC 61851 pilot signalling do.
"""

from __future__ import annotations

from enum import StrEnum

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage used when a station does not report one (EN 50160)."""

IEC_61851_MIN_CURRENT_A = 6.0
"""Lowest pilot current an EV must accept (IEC 61851-1); below it the EVSE must pause."""


class Phase(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


ALL_PHASES: tuple[Phase, ...] = (Phase.L1, Phase.L2, Phase.L3)


def power_w_from_current_a(current_a: float, voltage_v: float = NOMINAL_VOLTAGE_V, phases: int = 1) -> float:
    """Active power in W drawn at ``current_a`` per phase on ``phases`` phases."""
    _check_phases(phases)
    return current_a * voltage_v * phases


def current_a_from_power_w(power_w: float, voltage_v: float = NOMINAL_VOLTAGE_V, phases: int = 1) -> float:
    """Current per phase in A that draws ``power_w`` on ``phases`` phases."""
    _check_phases(phases)
    if voltage_v <= 0:
        raise ValueError(f"voltage_v must be positive, got {voltage_v}")
    return power_w / (voltage_v * phases)


def wh_from_kwh(energy_kwh: float) -> float:
    return energy_kwh * 1000.0


def _check_phases(phases: int) -> None:
    if phases not in (1, 2, 3):
        raise ValueError(f"phases must be 1, 2 or 3, got {phases}")
