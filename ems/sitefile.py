"""Reading a site file (TOML) into ``ems.domain.site.Site`` values, every problem reported at once.

Format (see docs/site-file.md)::

    [[sites]]
    id = "depot"
    timezone = "Europe/Amsterdam"
    capacity_w = 150000
    failsafe_capacity_w = 30000
    stale_after_s = 900
    phase_limits_a = { L1 = 250, L2 = 250, L3 = 250 }

      [[sites.circuits]]
      id = "feeder-a"
      parent = null            # optional; absent = directly under the grid connection
      capacity_w = 60000
      phase_limits_a = { L1 = 80, L2 = 80, L3 = 80 }

      [[sites.stations]]
      id = "CP001"
      circuit = "feeder-a"
        [[sites.stations.evses]]
        id = 1
        phases = 1
        phase_map = ["L2"]
        max_current_a = 32

A US site places EVSEs between two lines (``lines = ["L1", "L2"]``, ``phases = 1``,
``voltage_v = 208``) and says which circuit is a transformer's secondary
(``transformer = { connection = "delta-wye", turns_ratio = 4, primary_phase_limits_a = {...} }``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ems.domain.site import Circuit, EvseSpec, Site, StationSpec, TransformerSpec
from ems.domain.units import ALL_PHASES, IEC_61851_MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Phase
from ems.errors import SiteFileError

_SITE_KEYS = {
    "id",
    "name",
    "timezone",
    "capacity_w",
    "failsafe_capacity_w",
    "stale_after_s",
    "phase_limits_a",
    "circuits",
    "stations",
}
_CIRCUIT_KEYS = {"id", "name", "parent", "capacity_w", "phase_limits_a", "transformer"}
_TRANSFORMER_KEYS = {"connection", "turns_ratio", "primary_phase_limits_a"}
_STATION_KEYS = {"id", "circuit", "evses"}
_EVSE_KEYS = {"id", "phases", "phase_map", "voltage_v", "min_current_a", "max_current_a", "lines"}


def load_site_file(path: Path) -> tuple[Site, ...]:
    """Parse and validate ``path``; raise ``SiteFileError`` listing every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SiteFileError(f"cannot read site file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SiteFileError(f"site file {path} is not valid TOML", [str(exc)]) from exc
    return parse_sites(raw, str(path))


def parse_sites(raw: Mapping[str, Any], name: str = "site file") -> tuple[Site, ...]:
    reader = _Reader()
    sites_raw = raw.get("sites")
    unknown = set(raw) - {"sites"}
    if unknown:
        reader.problems.append(f"unknown top-level keys {sorted(unknown)} (expected [[sites]])")
    if not isinstance(sites_raw, list) or not sites_raw:
        reader.problems.append("no [[sites]] table: a site file describes at least one site")
        sites_raw = []
    sites = [reader.site(s, f"sites[{i}]") for i, s in enumerate(sites_raw)]
    ids = [s.id for s in sites]
    reader.problems.extend(f"site {d}: defined more than once" for d in sorted({i for i in ids if ids.count(i) > 1}))
    for site in sites:
        reader.problems.extend(site.problems())
    if reader.problems:
        raise SiteFileError(f"{name} has {len(reader.problems)} problem(s)", reader.problems)
    return tuple(sites)


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def _table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.problems.append(f"{where}: expected a table")
            return {}
        return value

    def _keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        extra = set(table) - allowed
        if extra:
            self.problems.append(f"{where}: unknown keys {sorted(extra)}")

    def _str(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.problems.append(f"{where}: {key} is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.problems.append(f"{where}: {key} must be a non-empty string")
            return None
        return value

    def _num(self, table: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"{where}: {key} must be a number, got {value!r}")
            return default
        return float(value)

    def _phase(self, value: Any, where: str) -> Phase | None:
        try:
            return Phase(value)
        except ValueError:
            self.problems.append(f"{where}: unknown phase {value!r} (use L1, L2, L3)")
            return None

    def _phase_limits(self, table: Mapping[str, Any], where: str, key: str = "phase_limits_a") -> dict[Phase, float]:
        raw = table.get(key, {})
        out: dict[Phase, float] = {}
        for name, value in self._table(raw, f"{where}.{key}").items():
            phase = self._phase(name, f"{where}.{key}")
            amps = self._num({"v": value}, "v", f"{where}.{key}.{name}")
            if phase is not None and amps is not None:
                out[phase] = amps
        return out

    def _transformer(self, t: Mapping[str, Any], where: str) -> TransformerSpec | None:
        if "transformer" not in t:
            return None
        where = f"{where}.transformer"
        raw = self._table(t["transformer"], where)
        self._keys(raw, _TRANSFORMER_KEYS, where)
        connection = raw.get("connection", "delta-wye")
        if not isinstance(connection, str):
            self.problems.append(f"{where}: connection must be a string, got {connection!r}")
            connection = "delta-wye"
        return TransformerSpec(
            connection=connection,
            turns_ratio=self._num(raw, "turns_ratio", where, 1.0) or 0.0,
            primary_phase_limits_a=self._phase_limits(raw, where, "primary_phase_limits_a"),
        )

    def _lines(self, t: Mapping[str, Any], where: str) -> tuple[Phase, Phase] | None:
        raw = t.get("lines")
        if raw is None:
            return None
        if not isinstance(raw, list) or len(raw) != 2:
            self.problems.append(f'{where}: lines must name two lines, like ["L1", "L2"], got {raw!r}')
            return None
        a, b = (self._phase(v, f"{where}.lines") for v in raw)
        if a is None or b is None:
            return None
        return (a, b)

    def site(self, raw: Any, where: str) -> Site:
        t = self._table(raw, where)
        self._keys(t, _SITE_KEYS, where)
        site_id = self._str(t, "id", where, required=True) or f"<{where}>"
        where = f"site {site_id}"
        tz = self._str(t, "timezone", where) or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.append(f"{where}: unknown timezone {tz!r}")
        circuits = [self.circuit(c, f"{where} circuits[{i}]") for i, c in enumerate(self._list(t, "circuits", where))]
        stations = [self.station(s, f"{where} stations[{i}]") for i, s in enumerate(self._list(t, "stations", where))]
        return Site(
            id=site_id,
            name=self._str(t, "name", where) or "",
            timezone=tz,
            capacity_w=self._num(t, "capacity_w", where),
            phase_limits_a=self._phase_limits(t, where),
            failsafe_capacity_w=self._num(t, "failsafe_capacity_w", where),
            stale_after_s=self._num(t, "stale_after_s", where, 900.0) or 900.0,
            circuits=tuple(circuits),
            stations=tuple(stations),
        )

    def _list(self, t: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = t.get(key, [])
        if not isinstance(value, list):
            self.problems.append(f"{where}: {key} must be an array of tables ([[...{key}]])")
            return []
        return value

    def circuit(self, raw: Any, where: str) -> Circuit:
        t = self._table(raw, where)
        self._keys(t, _CIRCUIT_KEYS, where)
        cid = self._str(t, "id", where, required=True) or f"<{where}>"
        where = f"circuit {cid}"
        return Circuit(
            id=cid,
            parent_id=self._str(t, "parent", where),
            capacity_w=self._num(t, "capacity_w", where),
            phase_limits_a=self._phase_limits(t, where),
            name=self._str(t, "name", where) or "",
            transformer=self._transformer(t, where),
        )

    def station(self, raw: Any, where: str) -> StationSpec:
        t = self._table(raw, where)
        self._keys(t, _STATION_KEYS, where)
        sid = self._str(t, "id", where, required=True) or f"<{where}>"
        where = f"station {sid}"
        evses_raw = self._list(t, "evses", where)
        evses = tuple(self.evse(e, f"{where} evses[{i}]") for i, e in enumerate(evses_raw)) or (EvseSpec(1),)
        return StationSpec(id=sid, circuit_id=self._str(t, "circuit", where), evses=evses)

    def evse(self, raw: Any, where: str) -> EvseSpec:
        t = self._table(raw, where)
        self._keys(t, _EVSE_KEYS, where)
        evse_id = t.get("id", 1)
        if isinstance(evse_id, bool) or not isinstance(evse_id, int):
            self.problems.append(f"{where}: id must be an integer")
            evse_id = 1
        phases = t.get("phases", 3)
        if isinstance(phases, bool) or not isinstance(phases, int):
            self.problems.append(f"{where}: phases must be an integer")
            phases = 3
        lines = self._lines(t, where)
        default_map = list(ALL_PHASES[:phases]) if phases in (1, 3) else list(ALL_PHASES)
        if lines is not None:
            default_map = [lines[0]]
        raw_map = t.get("phase_map", default_map)
        if not isinstance(raw_map, list):
            self.problems.append(f'{where}: phase_map must be a list like ["L1"]')
            raw_map = default_map
        phase_map = tuple(p for p in (self._phase(v, where) for v in raw_map) if p is not None)
        return EvseSpec(
            evse_id=evse_id,
            phases=phases,
            phase_map=phase_map,
            voltage_v=self._num(t, "voltage_v", where, NOMINAL_VOLTAGE_V) or NOMINAL_VOLTAGE_V,
            min_current_a=self._num(t, "min_current_a", where, IEC_61851_MIN_CURRENT_A) or 0.0,
            max_current_a=self._num(t, "max_current_a", where, 32.0) or 0.0,
            lines=lines,
        )
