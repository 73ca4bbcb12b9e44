"""JSON instances <-> snapshots, and schedules -> JSON (docs/schemas/*.schema.json).

``snapshot_from_json`` reads a decoded instance and reports every problem at once
(types, missing fields, then the snapshot's own consistency checks) as
:class:`ems.errors.InvalidInput`; ``ems optimize`` prints them and exits 2.

Wiring (docs/optimizer.md "Line currents as phasors"): an EVSE may say ``"lines": ["L1", "L2"]``
(wired line-to-line, ``voltage_v`` the line-to-line voltage), a circuit
``"transformer": {"connection": "delta-wye", "turns_ratio": 4, "primary_phase_limits_a": {...}}``;
:func:`ems.optimizer.wiring.compile_wiring` turns those and the phase limits above them into
``current_limits``. The instance may list ``current_limits`` itself (acnportal-style rows); one
with the id of a compiled limit replaces it (so a written snapshot reads back the same).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ems.domain.units import ALL_PHASES, IEC_61851_MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Phase
from ems.errors import InvalidInput
from ems.optimizer.schedule import Schedule
from ems.optimizer.snapshot import CircuitLimits, CurrentLimit, EvseLimits, SessionDemand, SiteLimits, Snapshot
from ems.optimizer.wiring import Connection, Transformer, compile_wiring, wiring_problems


class _Reader:
    """Collects problems while pulling typed fields out of decoded JSON."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def obj(self, value: object, where: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.problems.append(f"{where}: must be an object")
        return {}

    def items(self, data: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = data.get(key, [])
        if isinstance(value, list):
            return value
        self.problems.append(f"{where}.{key}: must be a list")
        return []

    def number(self, data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problems.append(f"{where}.{key}: must be a finite number" + ("" if key in data else " (missing)"))
            return 0.0 if default is None else default
        return float(value)

    def opt_number(self, data: Mapping[str, Any], key: str, where: str) -> float | None:
        return None if data.get(key) is None else self.number(data, key, where)

    def integer(self, data: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{where}.{key}: must be an integer" + ("" if key in data else " (missing)"))
            return 1 if default is None else default
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            self.problems.append(f"{where}.{key}: must be a non-empty string" + ("" if key in data else " (missing)"))
            return ""
        return value

    def opt_text(self, data: Mapping[str, Any], key: str, where: str) -> str | None:
        return None if data.get(key) is None else self.text(data, key, where)

    def time(self, data: Mapping[str, Any], key: str, where: str, default: datetime | None = None) -> datetime:
        value = data.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        self.problems.append(f"{where}.{key}: must be an ISO 8601 time with a zone, e.g. 2026-01-05T08:00:00Z")
        return default or datetime(1970, 1, 1, tzinfo=UTC)

    def series(self, data: Mapping[str, Any], key: str, where: str, slots: int) -> tuple[float, ...] | None:
        """A number (constant over the horizon) or a list with one number per slot."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, list):
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                return tuple(float(v) for v in value)
            self.problems.append(f"{where}.{key}: every value must be a number")
            return None
        return (self.number(data, key, where),) * max(slots, 0)

    def phases(self, data: Mapping[str, Any], key: str, where: str) -> dict[Phase, float]:
        raw = self.obj(data.get(key, {}), f"{where}.{key}")
        out: dict[Phase, float] = {}
        for name in raw:
            if name not in Phase.__members__:
                self.problems.append(f"{where}.{key}: unknown phase {name!r} (L1, L2 or L3)")
                continue
            out[Phase(name)] = self.number(raw, name, f"{where}.{key}")
        return out

    def lines(self, data: Mapping[str, Any], where: str) -> tuple[Phase, Phase] | None:
        """``"lines": ["L1", "L2"]``: a line-to-line EVSE (absent: line-to-neutral)."""
        value = data.get("lines")
        if value is None:
            return None
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(n, str) and n in Phase.__members__ for n in value)
            and value[0] != value[1]
        ):
            return (Phase(value[0]), Phase(value[1]))
        self.problems.append(f"{where}.lines: must be two distinct lines, e.g. [\"L1\", \"L2\"], got {value!r}")
        return None

    def transformer(self, data: Mapping[str, Any], circuit: str, where: str) -> Transformer | None:
        raw = data.get("transformer")
        if raw is None:
            return None
        t = self.obj(raw, f"{where}.transformer")
        w = f"{where}.transformer"
        unknown = set(t) - {"connection", "turns_ratio", "primary_phase_limits_a"}
        if unknown:
            self.problems.append(f"{w}: unknown key(s) {sorted(unknown)}")
        conn = t.get("connection", Connection.DELTA_WYE.value)
        if conn not in {c.value for c in Connection}:
            self.problems.append(f"{w}.connection: must be one of {[c.value for c in Connection]}, got {conn!r}")
            conn = Connection.DELTA_WYE.value
        return Transformer(
            circuit=circuit,
            connection=Connection(conn),
            turns_ratio=self.number(t, "turns_ratio", w, 1.0),
            primary_phase_limits_a=self.phases(t, "primary_phase_limits_a", w),
        )

    def current_limit(self, data: Mapping[str, Any], where: str) -> CurrentLimit:
        """``{"id", "limit_a", "terms": [[evse, coefficient, angle_deg], ...]}``."""
        terms: list[tuple[str, float, float]] = []
        for k, raw in enumerate(self.items(data, "terms", where)):
            ok = (
                isinstance(raw, list)
                and len(raw) == 3
                and isinstance(raw[0], str)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw[1:])
            )
            if not ok:
                self.problems.append(f"{where}.terms[{k}]: must be [evse id, coefficient, angle_deg]")
                continue
            terms.append((raw[0], float(raw[1]), float(raw[2])))
        return CurrentLimit(self.text(data, "id", where), self.number(data, "limit_a", where), tuple(terms))

    def phase_map(self, data: Mapping[str, Any], where: str, phases: int) -> tuple[Phase, ...]:
        """``"phase"``: one phase (a 3-phase EVSE's L1; rotation follows) or a list of phases."""
        value = data.get("phase", "L1")
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) and n in Phase.__members__ for n in names):
            self.problems.append(f"{where}.phase: must be L1, L2, L3 or a list of them, got {value!r}")
            return ALL_PHASES[:phases]
        if len(names) == 1 and phases == 3:
            k = ALL_PHASES.index(Phase(names[0]))
            return ALL_PHASES[k:] + ALL_PHASES[:k]
        return tuple(Phase(n) for n in names)


def snapshot_from_json(data: object) -> Snapshot:
    """A validated snapshot from a decoded instance, or ``InvalidInput`` with every problem."""
    r = _Reader()
    top = r.obj(data, "instance")
    start = r.time(top, "start", "instance")
    slot_s = r.integer(top, "slot_s", "instance")
    slots = r.integer(top, "slots", "instance")
    site = r.obj(top.get("site", {}), "site")
    site_limits = SiteLimits(
        capacity_w=r.series(site, "capacity_w", "site", slots),
        phase_limits_a=r.phases(site, "phase_limits_a", "site"),
        base_load_w=r.series(site, "base_load_w", "site", slots),
        pv_w=r.series(site, "pv_w", "site", slots),
    )
    circuits = []
    transformers: list[Transformer] = []
    for k, raw in enumerate(r.items(top, "circuits", "instance")):
        c = r.obj(raw, f"circuits[{k}]")
        where = f"circuits[{k}]"
        circuits.append(
            CircuitLimits(
                id=r.text(c, "id", where),
                parent=r.opt_text(c, "parent", where),
                capacity_w=r.series(c, "capacity_w", where, slots),
                phase_limits_a=r.phases(c, "phase_limits_a", where),
            )
        )
        transformer = r.transformer(c, circuits[-1].id, where)
        if transformer is not None:
            transformers.append(transformer)
    evses = []
    for k, raw in enumerate(r.items(top, "evses", "instance")):
        e = r.obj(raw, f"evses[{k}]")
        where = f"evses[{k}]"
        lines = r.lines(e, where)
        phases = r.integer(e, "phases", where, 1 if lines is not None else 3)
        evses.append(
            EvseLimits(
                id=r.text(e, "id", where),
                circuit=r.opt_text(e, "circuit", where),
                phases=phases,
                phase_map=(lines[0],) if lines is not None else r.phase_map(e, where, phases),
                voltage_v=r.number(e, "voltage_v", where, NOMINAL_VOLTAGE_V),
                min_a=r.number(e, "min_a", where, IEC_61851_MIN_CURRENT_A),
                max_a=r.number(e, "max_a", where, 32.0),
                lines=lines,
            )
        )
    sessions = []
    for k, raw in enumerate(r.items(top, "sessions", "instance")):
        s = r.obj(raw, f"sessions[{k}]")
        where = f"sessions[{k}]"
        sessions.append(
            SessionDemand(
                id=r.text(s, "id", where),
                evse=r.text(s, "evse", where),
                arrival=r.time(s, "arrival", where, start),
                departure=r.time(s, "departure", where),
                energy_wh=r.number(s, "energy_wh", where),
                delivered_wh=r.number(s, "delivered_wh", where, 0.0),
                max_w=r.opt_number(s, "max_w", where),
                phases=None if s.get("phases") is None else r.integer(s, "phases", where),
                priority=r.integer(s, "priority", where, 0),
                observed_a=r.opt_number(s, "observed_a", where),
                observed_phases=None if s.get("observed_phases") is None else r.integer(s, "observed_phases", where),
                allotted_a=r.opt_number(s, "allotted_a", where),
            )
        )
    prices = top.get("prices")
    price_series = r.series(top, "prices", "instance", slots) if prices is not None else None
    given = [
        r.current_limit(r.obj(raw, f"current_limits[{k}]"), f"current_limits[{k}]")
        for k, raw in enumerate(r.items(top, "current_limits", "instance"))
    ]
    r.problems.extend(wiring_problems(evses, circuits, transformers))
    wired = compile_wiring(site_limits, circuits, evses, transformers)
    named = {c.id for c in given}
    limits = (*(c for c in wired.current_limits if c.id not in named), *given)
    snapshot = Snapshot(
        start,
        slot_s,
        slots,
        wired.site,
        wired.circuits,
        tuple(evses),
        tuple(sessions),
        price_series,
        current_limits=limits,
    )
    # Fields that failed to parse were given harmless defaults, so the consistency checks
    # still run: one pass lists type errors and cross-reference errors together.
    problems = r.problems + [p for p in snapshot.problems() if p not in r.problems]
    if problems:
        raise InvalidInput("invalid instance", problems)
    return snapshot


def snapshot_to_json(s: Snapshot) -> dict[str, Any]:
    """The instance format (inverse of :func:`snapshot_from_json`)."""

    def series(v: tuple[float, ...] | None) -> list[float] | None:
        return None if v is None else list(v)

    def phases(m: Mapping[Phase, float]) -> dict[str, float]:
        return {str(q): a for q, a in m.items()}

    site: dict[str, Any] = {"capacity_w": series(s.site.capacity_w), "phase_limits_a": phases(s.site.phase_limits_a)}
    if s.site.base_load_w is not None:
        site["base_load_w"] = list(s.site.base_load_w)
    if s.site.pv_w is not None:
        site["pv_w"] = list(s.site.pv_w)
    out: dict[str, Any] = {
        "start": _iso(s.start),
        "slot_s": s.slot_s,
        "slots": s.slots,
        "site": site,
        "circuits": [
            {
                "id": c.id,
                "parent": c.parent,
                "capacity_w": series(c.capacity_w),
                "phase_limits_a": phases(c.phase_limits_a),
            }
            for c in s.circuits
        ],
        "evses": [
            {
                "id": e.id,
                "circuit": e.circuit,
                "phases": e.phases,
                "phase": [str(q) for q in e.phase_map],
                "voltage_v": e.voltage_v,
                "min_a": e.min_a,
                "max_a": e.max_a,
                **({"lines": [str(q) for q in e.lines]} if e.lines is not None else {}),
            }
            for e in s.evses
        ],
        "sessions": [
            {
                "id": d.id,
                "evse": d.evse,
                "arrival": _iso(d.arrival),
                "departure": _iso(d.departure),
                "energy_wh": d.energy_wh,
                "delivered_wh": d.delivered_wh,
                "max_w": d.max_w,
                "phases": d.phases,
                "priority": d.priority,
                **(
                    {"observed_a": d.observed_a, "observed_phases": d.observed_phases, "allotted_a": d.allotted_a}
                    if d.observed_a is not None
                    else {}
                ),
            }
            for d in s.sessions
        ],
    }
    if s.prices is not None:
        out["prices"] = list(s.prices)
    if s.current_limits:
        out["current_limits"] = [
            {"id": c.id, "limit_a": c.limit_a, "terms": [[e, coef, angle] for e, coef, angle in c.terms]}
            for c in s.current_limits
        ]
    return out


def current_limit_loss_from_json(data: object) -> float | None:
    """The instance's ``current_limit_loss`` (the phasor polygon's precision), if it sets one."""
    if not isinstance(data, Mapping) or data.get("current_limit_loss") is None:
        return None
    value = data["current_limit_loss"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidInput("invalid instance", [f"instance.current_limit_loss: must be in (0, 1), got {value!r}"])
    return float(value)


def schedule_to_json(schedule: Schedule, *, digits: int = 3) -> dict[str, Any]:
    """The schedule format: W per slot per session, A per phase, reasons, violations."""
    sch = schedule
    return {
        "status": str(sch.status),
        "algorithm": str(sch.algorithm),
        "solver": sch.solver,
        "start": _iso(sch.start),
        "slot_s": sch.slot_s,
        "slots": sch.slots,
        "objective": {k: _num(v, digits) for k, v in sch.objective.items()},
        "solve_s": round(sch.solve_s, 6),
        "stats": {k: (_num(v, 6) if isinstance(v, float) else v) for k, v in sch.stats.items()},
        "sessions": [
            {
                "id": sid,
                "power_w": [round(float(v), digits) for v in sch.power_w[i]],
                "current_a": [round(float(v), digits) for v in sch.current_a[i]],
                "phases": [str(q) for q in sch.session_phases[i]],
                "energy_wh": round(float(sch.energy_wh[i]), digits),
                "unmet_wh": round(float(sch.unmet_wh[i]), digits),
                "limited_by": list(sch.limited_by[i]),
            }
            for i, sid in enumerate(sch.session_ids)
        ],
        "site_power_w": [round(float(v), digits) for v in sch.site_power_w],
        "violations": [
            {
                "kind": v.kind,
                "message": v.message,
                "node": v.node,
                "session": v.session,
                "phase": None if v.phase is None else str(v.phase),
                "slots": list(v.slots),
                "amount": round(v.amount, digits),
                "unit": v.unit,
            }
            for v in sch.violations
        ],
    }


def _num(v: float | int | str, digits: int) -> float | int | str | None:
    if isinstance(v, float):
        return round(v, digits) if math.isfinite(v) else None
    return v


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
