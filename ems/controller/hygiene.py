"""Session hygiene on the planning side: one contradictory session must not stop a whole site (pure).

The optimizer refuses a snapshot it cannot take and says why, one sentence per problem,
each naming where it is (``Snapshot.problems``). A problem that names a session leaves
that session out of the plan (the controller counts its EVSE at what it may draw, as a
fixed load) and the rest of the site is planned. Two sessions overlapping on one EVSE (a
station restarted mid-transaction and the first never ended) leave out the older one:
the newer is the car that is plugged in now. A problem that names no session (the site
file, the capacity) cannot be worked around: the attempt fails with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ems.optimizer.snapshot import Snapshot

_SESSION = re.compile(r"^session (?P<id>\S+): (?P<why>.*)$")
_OVERLAP = re.compile(r"^overlaps session (?P<other>\S+) on evse (?P<evse>\S+)$")


@dataclass(frozen=True, slots=True)
class Usable:
    snapshot: Snapshot
    left_out: dict[str, str]
    """Session id -> why it was left out of the plan."""
    problems: tuple[str, ...]
    """What still stops planning (empty: the snapshot is valid)."""


def usable_snapshot(build: Callable[[frozenset[str]], Snapshot], exclude: frozenset[str] = frozenset()) -> Usable:
    """Build, and leave out the sessions the optimizer cannot take until what is left is valid."""
    left_out: dict[str, str] = {}
    snapshot = build(exclude)
    for _ in range(3):  # each pass removes every session named; a second pass only if removals uncover more
        problems = snapshot.problems()
        if not problems:
            return Usable(snapshot, left_out, ())
        named = _sessions(problems, snapshot)
        if not named:
            return Usable(snapshot, left_out, tuple(problems))
        left_out.update(named)
        snapshot = build(exclude | frozenset(left_out))
    problems = snapshot.problems()
    return Usable(snapshot, left_out, tuple(problems))


def _sessions(problems: list[str], snapshot: Snapshot) -> dict[str, str]:
    arrival = {s.id: s.arrival for s in snapshot.sessions}
    out: dict[str, str] = {}
    for problem in problems:
        m = _SESSION.match(problem)
        if m is None:
            continue
        session, why = m["id"], m["why"]
        overlap = _OVERLAP.match(why)
        if overlap is not None and overlap["other"] in arrival and session in arrival:
            older = min((session, overlap["other"]), key=lambda s: arrival[s])
            newer = session if older != session else overlap["other"]
            out[older] = f"overlaps the newer session {newer} on evse {overlap['evse']}"
        else:
            out[session] = why
    return out
