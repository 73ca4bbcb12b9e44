"""Learn what each car takes: the bound a session is planned with, from its meter readings.

An EV on a 22 kW EVSE may take 11 kW (its on-board charger), one phase of three, or taper
near full. Planned at what the EVSE could give, it holds capacity other EVs wait for. The
snapshot carries, per session, the last reading (``observed_a``: highest per-phase current;
``observed_phases``: phases carrying current) and the per-phase limit it had then
(``allotted_a``). The rules, applied at every plan:

- **no reading** (``observed_a is None``): the EVSE's maximum (and ``max_w``), as before;
- **it draws less than allotted** (below ``allotted_a - DRAW_MARGIN_A``): its bound becomes
  ``observed_a + DRAW_HEADROOM_A`` per phase (never below the EVSE's minimum current, so a
  car that paused can still be offered enough to resume), and a car that drew on one phase
  of a three-phase EVSE is planned on that one phase;
- **it draws at its bound** (within ``DRAW_MARGIN_A`` of ``allotted_a``): no learned bound: the
  next plan offers it what the EVSE and the site allow again, and the reading after that
  says whether it takes more.

Stateless by design: the controller feeds the latest reading and the limit in force then,
so a bound lowered by mistake (a reading taken mid-ramp) is raised as soon as the car
draws at it. A reading with no current at all (``observed_phases == 0``: a car not started
yet, paused, or full) teaches nothing: held at a low bound, a car that has not started yet
could not show that it takes more until the next re-plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from ems.optimizer.snapshot import EvseLimits, SessionDemand

DRAW_MARGIN_A = 1.0
"""Drawing within 1 A of the limit counts as drawing at it (meters and cars round)."""
DRAW_HEADROOM_A = 2.0
"""Above the observed draw, so a car held at its learned bound shows that it could take more."""
PHASE_IN_USE_A = 1.0
"""A phase carries charging current above 1 A (below: idle leakage, meter noise)."""


@dataclass(frozen=True, slots=True)
class Learned:
    """What a session is planned with: per-phase A bound (``None``: the EVSE's) and phases."""

    max_a: float | None
    phases: int | None


def learned(s: SessionDemand, e: EvseLimits) -> Learned:
    """The rules above for session ``s`` on EVSE ``e``."""
    phases = s.phases
    if s.observed_a is None or s.allotted_a is None or s.observed_phases == 0:
        return Learned(None, phases)
    if s.observed_a >= s.allotted_a - DRAW_MARGIN_A:
        return Learned(None, phases)
    if s.observed_phases == 1 and e.phases == 3:
        phases = 1
    bound = min(e.max_a, max(s.observed_a + DRAW_HEADROOM_A, e.min_a))
    return Learned(bound, phases)
