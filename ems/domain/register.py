"""The energy register of one session across readings, and the flags a meter sample can carry.

Pure. Chargers report ``Energy.Active.Import.Register`` either as the lifetime register (the
spec) or relative to the session start, and registers reset (meter swap, firmware update) or
jitter backwards. ``track_register`` turns every reading into a lifetime-register value, flags
the suspicious ones, and never lets session energy go down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ems.domain.session import Measurand, MeterSample

# Flags on a sample whose VALUE is not trusted (stored for audit, never billed or tracked).
FLAG_UNPARSEABLE = "unparseable"
FLAG_OUT_OF_RANGE = "out_of_range"
FLAG_BACKWARDS = "register_backwards"
FLAG_RESET = "register_reset"
# Flags on a sample whose TIME was replaced by the receive time (the value is trusted for the
# live register; billing, which interpolates in time, leaves it out).
FLAG_TIME_UNREADABLE = "time_unreadable"
FLAG_CLOCK_AHEAD = "clock_ahead"
FLAG_CLOCK_BEHIND = "clock_behind"
TIME_FLAGS = frozenset({FLAG_TIME_UNREADABLE, FLAG_CLOCK_AHEAD, FLAG_CLOCK_BEHIND})

REGISTER_TOLERANCE_WH = 1.0
"""Jitter allowed before a lower reading counts as going backwards: meters round to 1 Wh."""

RESET_FRACTION = 0.5
"""A reading below half the last register value is a reset (new meter / firmware), not jitter."""


def value_trusted(flag: str | None) -> bool:
    """True if a sample with ``flag`` has a value the register and live power may use."""
    return flag is None or flag in TIME_FLAGS


def is_register(s: MeterSample) -> bool:
    """A whole-meter energy register reading with a trusted value."""
    return s.measurand is Measurand.ENERGY_IMPORT_REGISTER and s.phase is None and value_trusted(s.flag)


def register_wh(samples: Iterable[MeterSample]) -> float | None:
    """The last trusted whole-meter energy register reading in ``samples`` (Wh), if any."""
    value = None
    for s in samples:
        if is_register(s):
            value = s.value
    return value


@dataclass(frozen=True, slots=True)
class RegisterState:
    """The energy register of one session as far as readings have shown it.

    ``meter_start_wh``: lifetime register at start (``None``: the station did not say).
    ``last_wh``: highest trusted lifetime reading so far. ``relative``: the station reports
    session-relative values (``None``: not decided yet). ``offset_wh``: added to readings after
    a reset so the lifetime register keeps counting up.
    Invariant: ``last_wh`` never decreases, so session energy never decreases.
    """

    meter_start_wh: float | None
    last_wh: float | None = None
    relative: bool | None = None
    offset_wh: float = 0.0

    @property
    def energy_wh(self) -> float:
        if self.last_wh is None or self.meter_start_wh is None:
            return 0.0
        return max(0.0, self.last_wh - self.meter_start_wh)


def track_register(state: RegisterState, reading_wh: float) -> tuple[RegisterState, float, str | None]:
    """Fold one ``Energy.Active.Import.Register`` reading (Wh) into ``state``.

    Returns (new state, the reading as a lifetime register in Wh, flag or ``None``).
    The first reading decides lifetime vs relative: a first reading below the start
    register means the station counts from the session start.
    """
    start = state.meter_start_wh
    relative = state.relative
    if relative is None:
        relative = start is not None and reading_wh < start - REGISTER_TOLERANCE_WH
    lifetime = reading_wh + state.offset_wh + (start if relative and start is not None else 0.0)
    last = state.last_wh if state.last_wh is not None else start
    if last is None or lifetime >= last - REGISTER_TOLERANCE_WH:
        new_last = lifetime if last is None else max(last, lifetime)
        return replace(state, relative=relative, last_wh=new_last), lifetime, None
    if lifetime < last * RESET_FRACTION:
        # A reset: the meter starts again from (about) zero; keep counting on from the last value.
        offset = state.offset_wh + (last - lifetime)
        return replace(state, relative=relative, last_wh=last, offset_wh=offset), last, FLAG_RESET
    return replace(state, relative=relative, last_wh=last), lifetime, FLAG_BACKWARDS


def apply_register(state: RegisterState, samples: list[MeterSample]) -> tuple[RegisterState, list[MeterSample]]:
    """Run every trusted whole-meter register sample through ``track_register``; others pass unchanged.

    A register sample's ``value`` becomes the lifetime register; a register flag replaces a time
    flag (the value is the worse news). Samples are taken in time order (offline queues deliver
    late), the output keeps input order.
    """
    order = sorted(range(len(samples)), key=lambda i: samples[i].measured_at)
    out = list(samples)
    for i in order:
        s = samples[i]
        if not is_register(s):
            continue
        state, lifetime, flag = track_register(state, s.value)
        out[i] = replace(s, value=lifetime, flag=flag or s.flag)
    return state, out


def power_w(samples: Iterable[MeterSample]) -> float | None:
    """The latest whole-meter active power (W) in ``samples``, summing phases if no total is given."""
    latest: MeterSample | None = None
    phases: dict[str, float] = {}
    for s in samples:
        if s.measurand is not Measurand.POWER_IMPORT or not value_trusted(s.flag):
            continue
        if s.phase is None:
            if latest is None or s.measured_at >= latest.measured_at:
                latest = s
        else:
            phases[s.phase] = s.value
    if latest is not None:
        return latest.value
    per_line = [v for p, v in phases.items() if p in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")]
    return sum(per_line) if per_line else None
