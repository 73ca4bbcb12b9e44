"""What each car was seen to take, for the optimizer snapshot (pure; ems.optimizer.draw has the rules).

From the live session (the last meter reading folded in by ``state.py``) and the dispatch
beliefs (the limit installed on the EVSE at that reading), per session: the highest
per-phase current it drew, the phases it drew on, and the per-phase limit it had. A
session is left out (planned at its EVSE's maximum) when there is no reading yet, when the
reading is too early in the session to say anything (the car still ramping up), or when
the controller is not sure which limit the EVSE had (a profile in flight or unanswered):
a wrong "allotted" would lower a bound that nothing limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ems.controller.belief import EvseBelief
from ems.controller.state import LiveState
from ems.optimizer.draw import PHASE_IN_USE_A

SETTLE_S = 60.0
"""Readings in the first minute of a session (EVs ramp up over seconds) teach nothing."""


@dataclass(frozen=True, slots=True)
class Draw:
    observed_a: float
    observed_phases: int
    allotted_a: float


def draws(
    site_id: str, state: LiveState, beliefs: Mapping[tuple[str, int], EvseBelief], *, settle_s: float = SETTLE_S
) -> dict[str, Draw]:
    """Per session id of ``site_id``: its last reading and the limit it had then (see above)."""
    out: dict[str, Draw] = {}
    for s in state.active(site_id):
        if s.measured_at is None or not s.grid_phase_power_w:
            continue
        if s.measured_at < s.started_at + timedelta(seconds=settle_s):
            continue
        belief = beliefs.get((s.station_id, s.evse_id))
        if belief is None or not belief.certain():
            continue
        allotted_a, _ = belief.bound(s.measured_at).at(s.measured_at)
        voltage_v = state.evse_spec(s.station_id, s.evse_id).voltage_v
        amps = [max(w, 0.0) / voltage_v for w in s.grid_phase_power_w.values()]
        out[s.session_id] = Draw(
            observed_a=max(amps),
            observed_phases=sum(1 for a in amps if a > PHASE_IN_USE_A),
            allotted_a=allotted_a,
        )
    return out
