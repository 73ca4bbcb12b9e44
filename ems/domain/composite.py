"""The limit a charging station WILL APPLY, from the charging profiles it has accepted (pure).

The same composite rules OCPP 1.6 (§3.13) and 2.0.1 (K01, K08) stations apply, shared by
the controller (which must know what each station does, to keep a site under its limit)
and the simulator (which must do exactly that, to be a fair check). No clock: instants
come in as arguments.

Rules, per EVSE at instant ``t``:

- A profile is *in effect* at ``t`` when ``t`` is inside its validity (``valid_from`` /
  ``valid_to``) and inside its schedule: from its start (``start_at``; a relative schedule
  starts when the transaction started, or now when there is none) for ``duration_s``
  (no duration: for ever). Inside the schedule the period with the latest start at or
  before ``t`` holds; before the first period nothing does.
- Per purpose, of the profiles in effect for this EVSE (its own and those installed on
  EVSE 0, which apply to every EVSE) the one with the highest stack level wins.
- A ``TxProfile`` applies only to the transaction it names (or, naming none, to the one
  running); when it is not in effect the ``TxDefaultProfile`` applies. Without a
  transaction only the ``TxDefaultProfile`` applies (what a transaction starting now gets).
- The station maximum (``ChargePointMaxProfile`` / ``ChargingStationMaxProfile``) caps the
  EVSE, and the sum of the station's EVSEs (``station_cap_a``).
- No profile limits an EVSE: it may draw its hardware maximum.

Installing replaces a profile with the same id, and (1.6 §5.16.2, 2.0.1 K01.FR.05) one of
the same purpose, stack level and EVSE. When a transaction ends its TxProfiles are
deleted. A refused, timed-out or lost profile was never installed: the previous one holds.

Limits are compared in A per phase: a limit in W on ``n`` phases is ``W / (V * n)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ems.domain.commands import SetChargingLimit
from ems.domain.units import NOMINAL_VOLTAGE_V

TX = "TxProfile"
TX_DEFAULT = "TxDefaultProfile"
STATION_MAX = "ChargePointMaxProfile"
STATION_MAX_NAMES = frozenset({"ChargePointMaxProfile", "ChargingStationMaxProfile"})
_PURPOSES = {
    "TxProfile": TX,
    "TxDefaultProfile": TX_DEFAULT,
    "ChargePointMaxProfile": STATION_MAX,
    "ChargingStationMaxProfile": STATION_MAX,
}


@dataclass(frozen=True, slots=True)
class Period:
    start_offset_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A charging profile as a station holds it (version-neutral; purpose normalised)."""

    id: int
    evse_id: int
    purpose: str
    stack_level: int
    rate_unit: str
    periods: tuple[Period, ...]
    start_at: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def start(self, relative_start: datetime) -> datetime:
        return self.start_at or relative_start

    def end(self, relative_start: datetime) -> datetime | None:
        """When its schedule ends (``None``: never)."""
        if self.duration_s is None:
            return self.valid_to
        end = self.start(relative_start) + timedelta(seconds=self.duration_s)
        return end if self.valid_to is None else min(end, self.valid_to)

    def period_at(self, t: datetime, relative_start: datetime) -> Period | None:
        """The period in force at ``t``; ``None`` when the profile is not in effect."""
        if (self.valid_from is not None and t < self.valid_from) or (self.valid_to is not None and t >= self.valid_to):
            return None
        elapsed = (t - self.start(relative_start)).total_seconds()
        if elapsed < 0 or (self.duration_s is not None and elapsed >= self.duration_s):
            return None
        current: Period | None = None
        for p in self.periods:  # sorted by start offset (``profile`` sorts them)
            if p.start_offset_s <= elapsed:
                current = p
            else:
                break
        return current

    def breakpoints(self, relative_start: datetime) -> list[datetime]:
        """Every instant at which what this profile imposes may change."""
        start = self.start(relative_start)
        out = [start + timedelta(seconds=p.start_offset_s) for p in self.periods]
        end = self.end(relative_start)
        if end is not None:
            out.append(end)
        if self.valid_from is not None:
            out.append(self.valid_from)
        return out


def profile(
    *,
    id: int,
    evse_id: int,
    purpose: str,
    stack_level: int,
    rate_unit: str,
    periods: Iterable[Period],
    start_at: datetime | None = None,
    duration_s: int | None = None,
    transaction_id: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> InstalledProfile:
    """Build an ``InstalledProfile`` with its purpose normalised and its periods sorted."""
    if purpose not in _PURPOSES:
        raise ValueError(f"unknown charging profile purpose {purpose!r}")
    if rate_unit not in ("A", "W"):
        raise ValueError(f"charging rate unit must be A or W, got {rate_unit!r}")
    return InstalledProfile(
        id=id,
        evse_id=evse_id,
        purpose=_PURPOSES[purpose],
        stack_level=stack_level,
        rate_unit=rate_unit,
        periods=tuple(sorted(periods, key=lambda p: p.start_offset_s)),
        start_at=start_at,
        duration_s=duration_s,
        transaction_id=transaction_id,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def from_command(c: SetChargingLimit) -> InstalledProfile:
    """What a station installs when it accepts ``c``."""
    return profile(
        id=c.profile_id,
        evse_id=c.evse_id,
        purpose=c.purpose,
        stack_level=c.stack_level,
        rate_unit=c.rate_unit,
        periods=(Period(p.start_offset_s, round(p.limit, 1), p.number_phases) for p in c.periods),
        start_at=c.start_at,
        duration_s=c.duration_s,
        transaction_id=c.transaction_id if _PURPOSES.get(c.purpose) == TX else None,
    )


# ------------------------------------------------------------------ a station's set of profiles


def install(profiles: Sequence[InstalledProfile], new: InstalledProfile) -> tuple[InstalledProfile, ...]:
    """The set after ``new`` is accepted: it replaces the same id, and the same purpose/stack level/EVSE."""
    kept = tuple(
        p
        for p in profiles
        if p.id != new.id
        and not (p.evse_id == new.evse_id and p.purpose == new.purpose and p.stack_level == new.stack_level)
    )
    return (*kept, new)


def end_transaction(
    profiles: Sequence[InstalledProfile], evse_id: int | None = None, transaction_id: str | None = None
) -> tuple[InstalledProfile, ...]:
    """The set after a transaction ended (``evse_id`` ``None``: every EVSE, as at a reboot): its TxProfiles go."""
    return tuple(
        p
        for p in profiles
        if not (
            p.purpose == TX
            and (evse_id is None or p.evse_id == evse_id)
            and (transaction_id is None or p.transaction_id in (None, transaction_id))
        )
    )


def clear(
    profiles: Sequence[InstalledProfile],
    *,
    profile_id: int | None = None,
    evse_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> tuple[InstalledProfile, ...]:
    """ClearChargingProfile: by id, else every profile matching all given criteria."""
    norm = None if purpose is None else _PURPOSES.get(purpose, purpose)

    def matches(p: InstalledProfile) -> bool:
        if profile_id is not None:
            return p.id == profile_id
        return (
            (evse_id is None or p.evse_id == evse_id)
            and (norm is None or p.purpose == norm)
            and (stack_level is None or p.stack_level == stack_level)
        )

    return tuple(p for p in profiles if not matches(p))


# ------------------------------------------------------------------ the composite


@dataclass(frozen=True, slots=True)
class Hardware:
    """What an EVSE can do without any profile: its maximum current per phase on its phases."""

    max_current_a: float = 32.0
    phases: int = 3
    voltage_v: float = NOMINAL_VOLTAGE_V


def amps(period: Period, rate_unit: str, hw: Hardware) -> float:
    """A period's limit as A per phase on the phases it charges on."""
    phases = min(hw.phases, period.number_phases or hw.phases)
    if rate_unit == "A":
        return period.limit
    return period.limit / (hw.voltage_v * phases)


def _winner(
    candidates: Iterable[InstalledProfile], t: datetime, relative_start: datetime
) -> tuple[InstalledProfile, Period] | None:
    best: tuple[InstalledProfile, Period] | None = None
    for p in candidates:
        if best is not None and p.stack_level <= best[0].stack_level:
            continue
        period = p.period_at(t, relative_start)
        if period is not None:
            best = (p, period)
    return best


@dataclass(frozen=True, slots=True)
class EvseLimit:
    """What an EVSE will apply: ``current_a`` per phase on ``phases`` phases (min with its hardware)."""

    current_a: float
    phases: int

    def power_w(self, voltage_v: float = NOMINAL_VOLTAGE_V) -> float:
        return self.current_a * voltage_v * self.phases


def evse_limit(
    profiles: Sequence[InstalledProfile],
    *,
    evse_id: int,
    t: datetime,
    hw: Hardware,
    tx_id: str | None,
    tx_started_at: datetime | None = None,
) -> EvseLimit:
    """The composite limit of EVSE ``evse_id`` at ``t`` (see the module docstring)."""
    mine = [p for p in profiles if p.evse_id in (0, evse_id)]
    since = tx_started_at or t
    chosen: list[tuple[InstalledProfile, Period]] = []
    station_max = _winner((p for p in mine if p.purpose in STATION_MAX_NAMES), t, since)
    if station_max is not None:
        chosen.append(station_max)
    tx = None
    if tx_id is not None:
        tx = _winner((p for p in mine if p.purpose == TX and p.transaction_id in (None, tx_id)), t, since)
    if tx is None:
        tx = _winner((p for p in mine if p.purpose == TX_DEFAULT), t, since)
    if tx is not None:
        chosen.append(tx)
    current = hw.max_current_a
    phases = hw.phases
    for p, period in chosen:
        current = min(current, amps(period, p.rate_unit, hw))
        if period.number_phases is not None:
            phases = min(phases, max(1, period.number_phases))
    return EvseLimit(max(0.0, current), phases)


def station_cap_a(profiles: Sequence[InstalledProfile], *, t: datetime, hw: Hardware) -> float | None:
    """The station maximum at ``t`` as A per phase on ``hw.phases`` (station-wide, EVSE 0); ``None``: none."""
    won = _winner((p for p in profiles if p.purpose in STATION_MAX_NAMES and p.evse_id == 0), t, t)
    return None if won is None else amps(won[1], won[0].rate_unit, hw)


def breakpoints(
    profiles: Iterable[InstalledProfile], relative_start: datetime, after: datetime, until: datetime
) -> set[datetime]:
    """The instants in ``(after, until]`` at which any of ``profiles`` may change what applies."""
    out: set[datetime] = set()
    for p in profiles:
        for b in p.breakpoints(relative_start):
            if after < b <= until:
                out.add(b)
    return out
