"""Rollups kept up to date incrementally, in the transaction that writes the raw rows.

Every definition here is chosen so that applying rows in any order, in any batches, late or
repeated, gives exactly what a from-scratch recomputation (``rebuild``) gives:

- a sample counts once: only the samples ``Tx.insert_new`` reports as new (their natural key was
  not stored yet) reach the rollups, so a station's resend or a journal replay adds nothing;
- sums are integers (milli-units, microseconds), so their order does not matter;
- energy comes from the trusted total ``Energy.Active.Import.Register`` readings of an EVSE
  (phase absent, no flag), one point per instant (the highest reading at that instant). The
  increase between consecutive points (negative counts 0: a meter reset) belongs to the bucket
  of the later point. A batch after the newest point extends the series (``rollup_register_state``);
  a late batch re-reads the stored points between its neighbours and applies the difference
  between the intervals with and without it;
- a row exists for every bucket that holds a counted sample: a trusted register point (with 0
  energy if the register did not move) or a power reading; site and station-day rows exist where
  an EVSE row does. Samples are never removed, so a row, once there, stays: a late point that moves
  an interval's energy into an earlier bucket leaves the later bucket's row at 0, as a rebuild has it;
- time in use: the interval from a status change to the next one of the same connector, when the
  first is Charging/SuspendedEV/SuspendedEVSE/Occupied, split at site-local midnight; a late change
  splits the interval it falls into.

The site and time zone a station is bucketed by come from ``analytics_placement``
(``RollupWriter.set_placement``); changing it calls for ``rebuild``.

Where the sample rollups are computed: on PostgreSQL by the database itself, in the statement that
stores the samples (migration 0022: a trigger over the rows the statement stored, the same
definitions in SQL); on SQLite, on a TimescaleDB hypertable and in ``rebuild`` by this module,
which stays the reference (``tests/integration/storage/test_rollups.py`` checks that the two agree).
The sample logic is written once, as steps (``Fetch``, ``Upsert``: ``ems.storage.rollup_steps``) that an async driver
(``apply_samples``) or one on SQLite's own thread (``apply_samples_inline``) runs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any
from weakref import WeakKeyDictionary

from ems.billing.codec import cdr_from_json
from ems.domain.billing import SessionCost
from ems.domain.session import Measurand
from ems.domain.site import Site
from ems.domain.station import ConnectorStatus
from ems.storage.db import Database, Dialect, InlineTx, Params, Row, Tx
from ems.storage.rollup_rules import (
    Placement,
    at_of,
    bucket_of,
    interval_energy,
    local_day,
    mean_mw,
    series,
    slot_of,
    split_by_local_day,
    step_mwh,
    to_us,
    zone_named,
)
from ems.storage.rollup_steps import CHUNK, Fetch, Steps, Upsert, run_async, run_inline, upsert_adding

IN_USE = frozenset(
    {ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV, ConnectorStatus.SUSPENDED_EVSE, ConnectorStatus.OCCUPIED}
)
REGISTER = Measurand.ENERGY_IMPORT_REGISTER.value
POWER = Measurand.POWER_IMPORT.value
SLOTS = ("p", "l1", "l2", "l3")
"""Power per phase: ``p`` the total (no phase), ``l1``..``l3`` a phase (``L1``, ``L1-N``, ...)."""

MAX_POWER_W = 1e9
MAX_REGISTER_WH = 1e11
"""Readings beyond these (1 GW, 100 GWh: no charger) stay stored but are left out of the rollups,
so a garbage value cannot overflow an integer sum."""

INGEST_LOCK = (6647155, 22)
"""PostgreSQL advisory lock (two-key form) held by whatever applies meter samples to the rollups, until commit."""
DEFAULT_STATION = "*"

# Index of each value in an EVSE bucket's vector: energy, then (sum, n, max) per slot.
_ENERGY = 0
_EVSE_VALUES = ("energy_mwh", *(f"{s}_{part}" for s in SLOTS for part in ("sum_mw", "n", "max_w")))
_SUM_N = tuple((f"{s}_sum_mw", f"{s}_n") for s in SLOTS)


class RollupWriter:
    """Applies new raw rows to the rollups, inside the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._placements: dict[str, Placement] | None = None
        self._partitions: set[tuple[str, int, int]] = set()
        self._by_database: bool | None = None

    # --- placement -------------------------------------------------------------------------

    async def set_placement(self, placement: Mapping[str, Placement], default: Placement) -> None:
        """Replace the stations' placement (``default`` for stations not listed)."""
        rows = [(DEFAULT_STATION, default.site_id, default.timezone)]
        rows += [(s, p.site_id, p.timezone) for s, p in sorted(placement.items())]
        for _, _, timezone in rows:
            zone_named(timezone)  # an unknown zone fails here, not at the next sample
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM analytics_placement")
            await tx.executemany(
                "INSERT INTO analytics_placement (station_id, site_id, timezone) VALUES (?, ?, ?)", rows
            )
        self._placements = None

    async def place_sites(self, sites: Sequence[Site]) -> None:
        """The placement the site files give (as billing reads it): a station in a site's file is there;
        others are in the only site, or in none (UTC) when there are several. Written only when changed."""
        placement = {spec.id: Placement(site.id, site.timezone) for site in sites for spec in site.stations}
        default = Placement(sites[0].id, sites[0].timezone) if len(sites) == 1 else Placement("", "UTC")
        async with self._db.transaction() as tx:
            current = {
                r["station_id"]: Placement(r["site_id"], r["timezone"])
                for r in await tx.fetchall("SELECT station_id, site_id, timezone FROM analytics_placement")
            }
        if current != {**placement, DEFAULT_STATION: default}:
            await self.set_placement(placement, default)

    async def placements(self, tx: Tx) -> dict[str, Placement]:
        if self._placements is None:
            rows = await tx.fetchall("SELECT station_id, site_id, timezone FROM analytics_placement")
            self._placements = {r["station_id"]: Placement(r["site_id"], r["timezone"]) for r in rows}
        return self._placements

    @staticmethod
    def place(placements: Mapping[str, Placement], station_id: str) -> Placement:
        return placements.get(station_id) or placements.get(DEFAULT_STATION) or Placement("", "UTC")

    # --- plans and capacity (implements ``ems.ports.analytics.PlanLog``) ---------------------

    async def record_plan(self, site_id: str, planned_w: Sequence[tuple[int, float]], at: datetime) -> None:
        rows = [(site_id, bucket, watts, at) for bucket, watts in planned_w]
        async with self._db.transaction() as tx:
            for i in range(0, len(rows), CHUNK):
                chunk = rows[i : i + CHUNK]
                await tx.execute(
                    "INSERT INTO analytics_site_plan (site_id, bucket_s, planned_w, recorded_at) VALUES "
                    + ", ".join("(?, ?, ?, ?)" for _ in chunk)
                    + " ON CONFLICT (site_id, bucket_s) DO UPDATE SET planned_w = excluded.planned_w, "
                    "recorded_at = excluded.recorded_at",
                    [v for row in chunk for v in row],
                )

    async def record_capacity(self, site_id: str, bucket_s: int, capacity_w: float, at: datetime) -> None:
        async with self._db.transaction() as tx:
            least = "LEAST" if tx.dialect.name == "postgresql" else "min"
            await tx.execute(
                "INSERT INTO analytics_site_plan (site_id, bucket_s, capacity_w, recorded_at) VALUES (?, ?, ?, ?) "
                f"ON CONFLICT (site_id, bucket_s) DO UPDATE SET capacity_w = {least}("
                "COALESCE(analytics_site_plan.capacity_w, excluded.capacity_w), excluded.capacity_w), "
                "recorded_at = excluded.recorded_at",
                (site_id, bucket_s, capacity_w, at),
            )

    # --- partitions (PostgreSQL) -----------------------------------------------------------

    async def ensure_partitions(self, tx: Tx, table: str, times: Iterable[datetime]) -> None:
        """Create the monthly partitions of ``table`` the rows about to be written need (PostgreSQL)."""
        if tx.dialect.name != "postgresql":
            return
        months = {(t.astimezone(UTC).year, t.astimezone(UTC).month) for t in times}
        missing = sorted(m for m in months if (table, *m) not in self._partitions)
        for year, month in missing:
            first = datetime(year, month, 1, tzinfo=UTC)
            await tx.execute("SELECT ems_ensure_month_partitions(?, ?, ?)", (table, first, first))
            self._partitions.add((table, year, month))

    # --- meter samples ---------------------------------------------------------------------

    async def rolled_up_by_database(self, tx: Tx) -> bool:
        """Whether the database keeps the sample rollups itself, as the rows are stored (PostgreSQL,
        migration 0022's trigger; not on a TimescaleDB hypertable, nor on SQLite: there the caller
        passes the new rows to ``apply_samples``)."""
        if self._by_database is None:
            self._by_database = tx.dialect.name == "postgresql" and bool(
                await tx.fetchval(
                    "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('meter_samples') "
                    "AND tgname = 'ems_rollup_samples' AND tgenabled <> 'D'"
                )
            )
        return self._by_database

    async def apply_samples(self, tx: Tx, new: Sequence[Params], columns: Sequence[str]) -> None:
        """Add newly stored meter samples (rows in ``columns`` order) to the rollups."""
        if not new:
            return
        steps = self._samples_steps(tx.dialect, new, columns)
        try:
            step = next(steps)
            while True:
                step = steps.send(await run_async(tx, step))
        except StopIteration:
            return

    def apply_samples_inline(self, tx: InlineTx, new: Sequence[Params], columns: Sequence[str]) -> None:
        """``apply_samples`` on the database's own thread (``Tx.inline``: SQLite), without a hand-over per statement."""
        if not new:
            return
        steps = self._samples_steps(tx.dialect, new, columns)
        try:
            step = next(steps)
            while True:
                step = steps.send(run_inline(tx, step))
        except StopIteration:
            return

    def _samples_steps(self, dialect: Dialect, new: Sequence[Params], columns: Sequence[str]) -> Steps[None]:
        """The work of ``apply_samples`` as the statements it needs (sent back their rows): one
        definition for both ways of running it."""
        col = {name: i for i, name in enumerate(columns)}
        i_station, i_evse, i_at, i_measurand = col["station_id"], col["evse_id"], col["measured_at"], col["measurand"]
        i_value, i_phase, i_flag = col["value"], col["phase"], col["flag"]
        evse: dict[tuple[str, int, int], list[Any]] = {}
        registers: dict[tuple[str, int], list[tuple[datetime, float]]] = defaultdict(list)
        for row in new:
            measurand = row[i_measurand]
            if row[i_flag] is not None:
                continue
            if measurand == POWER:
                slot = slot_of(row[i_phase])
                if slot is None:
                    continue
                value = float(row[i_value])
                if not -MAX_POWER_W <= value <= MAX_POWER_W:
                    continue
                key = (row[i_station], int(row[i_evse]), bucket_of(row[i_at]))
                vec = evse.get(key)
                if vec is None:
                    vec = evse[key] = [0] * len(_EVSE_VALUES)
                vec[slot] += round(value * 1000)
                vec[slot + 1] += 1
                if value > vec[slot + 2]:
                    vec[slot + 2] = value
            elif measurand == REGISTER and row[i_phase] is None and 0 <= row[i_value] <= MAX_REGISTER_WH:
                registers[(row[i_station], int(row[i_evse]))].append((row[i_at], float(row[i_value])))
                key = (row[i_station], int(row[i_evse]), bucket_of(row[i_at]))
                if key not in evse:  # the point's bucket has a row, even if no energy lands there
                    evse[key] = [0] * len(_EVSE_VALUES)
        if self._placements is None:
            rows = yield Fetch("SELECT station_id, site_id, timezone FROM analytics_placement")
            self._placements = {r["station_id"]: Placement(r["site_id"], r["timezone"]) for r in rows}
        placements = self._placements
        # Upserts nothing in this batch reads again run together at the end.
        pending: list[Upsert] = []
        if registers:
            energy = yield from self._register_energy(dialect, registers, pending)
            for (station_id, evse_id, bucket), mwh in energy.items():
                if mwh:
                    key = (station_id, evse_id, bucket)
                    vec = evse.get(key)
                    if vec is None:
                        vec = evse[key] = [0] * len(_EVSE_VALUES)
                    vec[_ENERGY] += mwh
        yield from self._apply_evse(evse, placements, pending)
        for step in pending:
            _ = yield step  # not ``yield from pending``: a list iterator cannot be sent the answers

    def _register_energy(
        self,
        dialect: Dialect,
        new_points: Mapping[tuple[str, int], list[tuple[datetime, float]]],
        pending: list[Upsert],
    ) -> Steps[dict[tuple[str, int, int], int]]:
        """Energy per (station, EVSE, bucket) that the new register points add (or move); updates the state."""
        keys = sorted(new_points)
        # Locked (PostgreSQL) until commit: a concurrent batch for the same EVSEs waits and then
        # extends the series from what this one wrote, instead of both extending the same point.
        state: dict[tuple[str, int], tuple[datetime, float]] = {}
        stations = sorted({s for s, _ in keys})
        for i in range(0, len(stations), CHUNK):
            chunk = stations[i : i + CHUNK]
            rows = yield Fetch(
                "SELECT station_id, evse_id, last_at, last_wh FROM rollup_register_state "
                f"WHERE station_id IN ({', '.join('?' for _ in chunk)}) "
                f"ORDER BY station_id, evse_id{dialect.for_update}",
                chunk,
            )
            for r in rows:
                state[(r["station_id"], int(r["evse_id"]))] = (r["last_at"], float(r["last_wh"]))
        out: dict[tuple[str, int, int], int] = {}
        new_state: list[Params] = []
        for key in keys:
            last = state.get(key)
            given = new_points[key]
            if len(given) == 1 and last is not None and given[0][0] > last[0]:
                # The common case (one reading per EVSE per batch, after the newest): one interval.
                at, wh = given[0]
                mwh = step_mwh(last[1], wh)
                if mwh:
                    out[(*key, bucket_of(at))] = mwh
                new_state.append((key[0], key[1], at, wh))
                continue
            points = series(given)
            per_bucket: dict[int, int] = {}
            if last is None or points[0][0] > last[0]:
                # In order: the batch extends the series.
                interval_energy(([last] if last else []) + points, per_bucket)
                newest = points[-1]
            else:
                newest = yield from self._late_points(dialect, key, new_points[key], per_bucket)
                if newest[0] < last[0] or (newest[0] == last[0] and newest[1] <= last[1]):
                    newest = last
            for bucket, mwh in per_bucket.items():
                out[(*key, bucket)] = mwh
            if last is None or newest != last:
                new_state.append((key[0], key[1], newest[0], newest[1]))
        if new_state:
            pending.append(
                Upsert(
                    "rollup_register_state",
                    ("station_id", "evse_id"),
                    ("last_at", "last_wh"),
                    new_state,
                    keep=("last_at", "last_wh"),
                )
            )
        return out

    def _late_points(
        self, dialect: Dialect, key: tuple[str, int], new: list[tuple[datetime, float]], out: dict[int, int]
    ) -> Steps[tuple[datetime, float]]:
        """Energy difference the late points ``new`` make between their stored neighbours; the newest point."""
        station_id, evse_id = key
        where = (
            "station_id = ? AND evse_id = ? AND measurand = ? AND phase IS NULL AND flag IS NULL "
            "AND value >= 0 AND value <= ?"
        )
        base = (station_id, evse_id, REGISTER, MAX_REGISTER_WH)
        first_new = min(at for at, _ in new)
        last_new = max(at for at, _ in new)
        bound = f"FROM meter_samples WHERE {where} AND measured_at"
        found = yield Fetch(f"SELECT max(measured_at) AS at {bound} < ?", (*base, first_new))
        prev_at = dialect.timestamp(found[0]["at"]) if found else None
        found = yield Fetch(f"SELECT min(measured_at) AS at {bound} > ?", (*base, last_new))
        next_at = dialect.timestamp(found[0]["at"]) if found else None
        sql = f"SELECT measured_at, value FROM meter_samples WHERE {where}"
        params: list[Any] = list(base)
        if prev_at is not None:
            sql += " AND measured_at >= ?"
            params.append(prev_at)
        if next_at is not None:
            sql += " AND measured_at <= ?"
            params.append(next_at)
        stored = [(r["measured_at"], float(r["value"])) for r in (yield Fetch(sql, params))]
        # The series before this batch: what is stored now minus the rows this batch added.
        added = Counter(new)
        before: list[tuple[datetime, float]] = []
        for point in stored:
            if added[point] > 0:
                added[point] -= 1
            else:
                before.append(point)
        after_series = series(stored)
        interval_energy(after_series, out)
        interval_energy(series(before), out, sign=-1)
        return after_series[-1]

    def _apply_evse(
        self,
        evse: Mapping[tuple[str, int, int], list[Any]],
        placements: Mapping[str, Placement],
        pending: list[Upsert],
    ) -> Steps[None]:
        if not evse:
            return
        sums = tuple(name for pair in _SUM_N for name in pair)
        site: dict[tuple[str, int], list[int]] = {}
        station_day: dict[tuple[str, str], list[Any]] = {}
        items = sorted(evse.items())
        returned = yield Upsert(
            "rollup_evse_5min",
            ("station_id", "evse_id", "bucket_s"),
            _EVSE_VALUES,
            [(*key, *vec) for key, vec in items],
            peaks=tuple(c for c in _EVSE_VALUES if c.endswith("_max_w")),
            returning=("station_id", "evse_id", "bucket_s", *sums),
        )
        days: dict[tuple[int, str], str] = {}
        places: dict[str, Placement] = {}
        for r in returned:
            key = (r["station_id"], int(r["evse_id"]), int(r["bucket_s"]))
            vec = evse[key]
            place = places.get(key[0])
            if place is None:
                place = places[key[0]] = self.place(placements, key[0])
            s_vec = site.get((place.site_id, key[2]))
            if s_vec is None:
                s_vec = site[(place.site_id, key[2])] = [0, 0, 0, 0, 0]
            s_vec[0] += vec[_ENERGY]
            for j, (sum_name, n_name) in enumerate(_SUM_N):
                new_sum, new_n = int(r[sum_name]), int(r[n_name])
                if new_n:  # the site load moves by the change of the EVSE's (floored) mean
                    s_vec[1 + j] += mean_mw(new_sum, new_n) - mean_mw(new_sum - vec[1 + 3 * j], new_n - vec[2 + 3 * j])
            day = days.get((key[2], place.timezone))
            if day is None:
                day = days[(key[2], place.timezone)] = local_day(at_of(key[2]), place.zone)
            d_vec = station_day.setdefault((key[0], day), [place.site_id, 0, 0.0])
            d_vec[1] += vec[_ENERGY]
            if vec[3] > d_vec[2]:
                d_vec[2] = vec[3]
        pending.append(
            Upsert(
                "rollup_site_5min",
                ("site_id", "bucket_s"),
                ("energy_mwh", "load_mw", "l1_mw", "l2_mw", "l3_mw"),
                [(*k, *v) for k, v in sorted(site.items())],
            )
        )
        pending.append(
            Upsert(
                "rollup_station_day",
                ("station_id", "day"),
                ("site_id", "energy_mwh", "peak_w"),
                [(*k, *v) for k, v in sorted(station_day.items())],
                keep=("site_id",),
                peaks=("peak_w",),
            )
        )

    # --- status changes --------------------------------------------------------------------

    async def apply_status(
        self, tx: Tx, station_id: str, evse_id: int, connector_id: int, status: str, at: datetime, record_id: int
    ) -> None:
        """A status change stored with id ``record_id``: close the interval before it, open the one after."""
        where = "station_id = ? AND evse_id = ? AND connector_id = ?"
        base = (station_id, evse_id, connector_id)
        prev = await tx.fetchone(
            f"SELECT status, at FROM connector_status_history WHERE {where} AND (at < ? OR (at = ? AND id < ?)) "
            "ORDER BY at DESC, id DESC LIMIT 1",
            (*base, at, at, record_id),
        )
        nxt = await tx.fetchone(
            f"SELECT status, at FROM connector_status_history WHERE {where} AND (at > ? OR (at = ? AND id > ?)) "
            "ORDER BY at, id LIMIT 1",
            (*base, at, at, record_id),
        )
        zone = self.place(await self.placements(tx), station_id)
        days: dict[str, int] = {}

        def add(start: datetime, end: datetime, sign: int) -> None:
            for day, us in split_by_local_day(start, end, zone.zone).items():
                days[day] = days.get(day, 0) + sign * us

        if prev is not None and prev["status"] in IN_USE:
            if nxt is not None:
                add(prev["at"], nxt["at"], -1)
            add(prev["at"], at, 1)
        if nxt is not None and status in IN_USE:
            add(at, nxt["at"], 1)
        await self._add_in_use(tx, station_id, zone.site_id, days)

    async def _add_in_use(self, tx: Tx, station_id: str, site_id: str, days: Mapping[str, int]) -> None:
        rows = [(station_id, day, site_id, us) for day, us in sorted(days.items()) if us]
        key = ("station_id", "day")
        await upsert_adding(tx, "rollup_station_day", key, ("site_id", "in_use_us"), rows, keep=("site_id",))

    # --- priced sessions -------------------------------------------------------------------

    async def apply_cost(self, tx: Tx, cost: SessionCost) -> None:
        cdr = cost.cdr
        place = self.place(await self.placements(tx), cost.station_id)
        local = cdr.started_at.astimezone(place.zone)
        day, month = local.date().isoformat(), local.strftime("%Y-%m")
        figures = (
            1,
            to_us(cdr.stopped_at - cdr.started_at),
            int((Decimal(cdr.energy_wh) * 1000).to_integral_value()),
            cdr.total.to_minor(),
            cost.captured_minor,
        )
        names = ("sessions", "session_us", "energy_mwh", "priced_minor", "collected_minor")
        await upsert_adding(
            tx,
            "rollup_station_day_fees",
            ("station_id", "day", "currency"),
            ("site_id", *names),
            [(cost.station_id, day, cdr.currency, place.site_id, *figures)],
            keep=("site_id",),
        )
        user_id = await self.user_of(tx, cost.account_id, cost.card_uid)
        if user_id is not None:
            key = ("user_id", "month", "currency")
            await upsert_adding(tx, "rollup_user_month", key, names, [(user_id, month, cdr.currency, *figures)])

    @staticmethod
    async def user_of(tx: Tx, account_id: str | None, card_uid: str | None) -> str | None:
        if account_id is not None:
            user = await tx.fetchval("SELECT user_id FROM billing_accounts WHERE id = ?", (account_id,))
            if user is not None:
                return str(user)
        if card_uid is not None:
            user = await tx.fetchval("SELECT user_id FROM cards WHERE uid = ?", (card_uid,))
            if user is not None:
                return str(user)
        return None

    # --- from scratch ----------------------------------------------------------------------

    async def rebuild(self, *, on_station: Any = None) -> dict[str, int]:
        """Recompute every rollup from the raw rows, in one transaction. Returns counts of what was read."""
        counts = {"samples": 0, "status_changes": 0, "sessions_priced": 0}
        async with self._db.transaction() as tx:
            if tx.dialect.name == "postgresql":
                # the lock the rollup trigger takes per batch (migration 0022): no batch applies meanwhile
                await tx.execute(f"SELECT pg_advisory_xact_lock({INGEST_LOCK[0]}, {INGEST_LOCK[1]})")
            for table in (
                "rollup_register_state",
                "rollup_evse_5min",
                "rollup_site_5min",
                "rollup_station_day",
                "rollup_station_day_fees",
                "rollup_user_month",
            ):
                await tx.execute(f"DELETE FROM {table}")
            self._placements = None
            columns = ("station_id", "evse_id", "measured_at", "measurand", "value", "phase", "flag")
            found = await tx.fetchall("SELECT DISTINCT station_id FROM meter_samples ORDER BY 1")
            stations = [r["station_id"] for r in found]
            for station_id in stations:
                rows = await tx.fetchall(
                    f"SELECT {', '.join(columns)} FROM meter_samples WHERE station_id = ? AND measurand IN (?, ?)",
                    (station_id, REGISTER, POWER),
                )
                await self.apply_samples(tx, [tuple(r[c] for c in columns) for r in rows], columns)
                counts["samples"] += len(rows)
                if on_station is not None:
                    on_station(station_id)
            placements = await self.placements(tx)
            history = await tx.fetchall(
                "SELECT station_id, evse_id, connector_id, status, at FROM connector_status_history "
                "ORDER BY station_id, evse_id, connector_id, at, id"
            )
            counts["status_changes"] = len(history)
            per_station: dict[str, dict[str, int]] = defaultdict(dict)
            for prev, nxt in pairwise(history):
                same = all(prev[k] == nxt[k] for k in ("station_id", "evse_id", "connector_id"))
                if same and prev["status"] in IN_USE:
                    zone = self.place(placements, prev["station_id"]).zone
                    days = per_station[prev["station_id"]]
                    for day, us in split_by_local_day(prev["at"], nxt["at"], zone).items():
                        days[day] = days.get(day, 0) + us
            for station_id, days in sorted(per_station.items()):
                await self._add_in_use(tx, station_id, self.place(placements, station_id).site_id, days)
            for row in await tx.fetchall("SELECT * FROM session_costs ORDER BY session_id"):
                await self.apply_cost(tx, cost_from_row(row))
                counts["sessions_priced"] += 1
        return counts


def cost_from_row(row: Row) -> SessionCost:
    return SessionCost(
        session_id=row["session_id"],
        station_id=row["station_id"],
        cdr=cdr_from_json(row["cdr"]),
        priced_at=row["priced_at"],
        account_id=row["account_id"],
        card_uid=row["card_uid"],
        hold_id=row["hold_id"],
        captured_minor=int(row["captured_minor"]),
        uncollected_minor=int(row["uncollected_minor"]),
    )


_WRITERS: WeakKeyDictionary[Database, RollupWriter] = WeakKeyDictionary()


def writer_for(db: Database) -> RollupWriter:
    """The one ``RollupWriter`` of ``db`` (it caches the placement and the partitions made)."""
    writer = _WRITERS.get(db)
    if writer is None:
        writer = _WRITERS[db] = RollupWriter(db)
    return writer
