"""The durable inbox of state-changing station messages: answered only once on disk.

A charger deletes a transaction message once it has our answer, so the answer must not
be sent before the message is safe. The central database may be briefly away (a
PostgreSQL restart, a locked SQLite file), so the journal is a separate local SQLite
file (stdlib ``sqlite3``, WAL, ``synchronous=FULL``) next to the data directory:

1. a handler computes the answer, ``append``s (station, version, action, frame, answer);
2. appends are group-committed: one transaction and one fsync for everything that arrived
   while the previous commit ran (a few ms), so throughput does not pay one fsync each;
3. the handler answers the station;
4. the applier (``ems.ocpp.applier``) takes records in order, writes them to storage
   (retrying while it is unavailable) and ``ack``s them; acked records are deleted.

On start, records not yet acked are handed to the applier again (at-least-once: a
record applied just before a crash may be applied twice; the applier is idempotent for
sessions, and a re-applied batch of meter samples can repeat).

The same file optionally keeps the raw-frame audit log (``audit``), both directions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ems.domain.station import OcppVersion

log = logging.getLogger(__name__)

LOCAL_TRANSACTION_ID_BASE = 2_000_000_000
"""1.6 transaction ids handed out while the database is down come from here up (int32-safe
until 2,147,483,647), far above what the database sequence reaches, so the two never meet."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY,
    station_id TEXT NOT NULL,
    version TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    response TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    station_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    frame TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Record:
    """One journaled message: what the station sent and what we answered."""

    seq: int
    station_id: str
    version: OcppVersion
    action: str
    payload: dict[str, Any]
    response: dict[str, Any]
    received_at: datetime


class Journal:
    """Open with ``await Journal.open(path)``; ``path`` ``None`` keeps it in memory (unit tests only)."""

    def __init__(self, conn: sqlite3.Connection, next_seq: int, durable: bool) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._next_seq = next_seq
        self.durable = durable
        self._pending: list[tuple[Record, asyncio.Future[None]]] = []
        self._audit: list[tuple[str, str, str, str]] = []
        self._acked = 0
        self._wake = asyncio.Event()
        self._ready: deque[Record] = deque()
        self._ready_event = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0
        self.committed = 0

    @classmethod
    async def open(cls, path: Path | None) -> Journal:
        def _open() -> tuple[sqlite3.Connection, int, list[Record]]:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            rows = conn.execute(
                "SELECT seq, station_id, version, action, payload, response, received_at FROM inbox ORDER BY seq"
            ).fetchall()
            top = conn.execute("SELECT max(seq) FROM inbox").fetchone()[0] or 0
            records = [
                Record(
                    r[0],
                    r[1],
                    OcppVersion(r[2]),
                    r[3],
                    json.loads(r[4]),
                    json.loads(r[5]),
                    datetime.fromisoformat(r[6]),
                )
                for r in rows
            ]
            return conn, top + 1, records

        conn, next_seq, backlog = await asyncio.to_thread(_open)
        journal = cls(conn, next_seq, durable=path is not None)
        journal._ready.extend(backlog)
        if backlog:
            log.warning("OCPP journal: %d messages not yet in storage, applying them now", len(backlog))
            journal._ready_event.set()
        journal._writer = asyncio.get_running_loop().create_task(journal._write_loop(), name="ocpp-journal")
        journal._writer.add_done_callback(journal._writer_done)
        return journal

    @property
    def writer(self) -> asyncio.Task[None]:
        """The group-commit task; the OCPP runtime watches it (it ends only at ``close`` unless it fails)."""
        assert self._writer is not None, "open the journal with Journal.open"
        return self._writer

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("OCPP journal: the writer failed; no message can be answered until it restarts", exc_info=error)
        pending, self._pending = self._pending, []
        for _, done in pending:
            if not done.done():
                done.set_exception(RuntimeError("the OCPP journal writer failed"))

    async def close(self) -> None:
        """Commit what is pending and close the file."""
        self._closed = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        await asyncio.to_thread(self._conn.close)

    # ------------------------------------------------------------------ writing

    async def append(
        self,
        station_id: str,
        version: OcppVersion,
        action: str,
        payload: dict[str, Any],
        response: dict[str, Any],
        received_at: datetime,
    ) -> Record:
        """Returns once the record is committed to disk; raises ``OSError``/``sqlite3.Error`` if it cannot be."""
        if self._closed:
            raise RuntimeError("journal is closed")
        if self._writer is not None and self._writer.done():
            raise RuntimeError("the OCPP journal writer failed")
        record = Record(self._next_seq, station_id, version, action, payload, response, received_at)
        self._next_seq += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        self._wake.set()
        await done
        return record

    def audit(self, station_id: str, direction: str, frame: str, at: datetime) -> None:
        """Queue a raw frame for the audit log (written with the next commit; not awaited)."""
        self._audit.append((at.isoformat(), station_id, direction, frame))
        self._wake.set()

    def ack(self, seq: int) -> None:
        """Every record up to ``seq`` is in storage; deleted with the next commit."""
        self._acked = max(self._acked, seq)
        self._wake.set()

    async def next_local_transaction_id(self) -> int:
        """A 1.6 transaction id for when the database cannot give one; unique across restarts."""

        def bump() -> int:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute("SELECT value FROM counters WHERE name = 'tx16'").fetchone()
                value = (row[0] if row else LOCAL_TRANSACTION_ID_BASE) + 1
                self._conn.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('tx16', ?)", (value,))
                self._conn.execute("COMMIT")
                return int(value)

        return await asyncio.to_thread(bump)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            audit, self._audit = self._audit, []
            acked = self._acked
            if batch or audit or acked:
                try:
                    await asyncio.to_thread(self._commit, [r for r, _ in batch], audit, acked)
                except (OSError, sqlite3.Error) as error:
                    log.exception("OCPP journal: cannot commit %d messages", len(batch))
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                else:
                    self.commits += 1
                    self.committed += len(batch)
                    for record, done in batch:
                        if not done.done():
                            done.set_result(None)
                        self._ready.append(record)
                    if batch:
                        self._ready_event.set()
            if self._closed and not self._pending:
                return

    def _commit(self, records: list[Record], audit: list[tuple[str, str, str, str]], acked: int) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if records:
                    self._conn.executemany(
                        "INSERT INTO inbox (seq, station_id, version, action, payload, response, received_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                r.seq,
                                r.station_id,
                                r.version.value,
                                r.action,
                                json.dumps(r.payload, separators=(",", ":")),
                                json.dumps(r.response, separators=(",", ":")),
                                r.received_at.isoformat(),
                            )
                            for r in records
                        ],
                    )
                if audit:
                    self._conn.executemany(
                        "INSERT INTO audit (at, station_id, direction, frame) VALUES (?, ?, ?, ?)", audit
                    )
                if acked:
                    self._conn.execute("DELETE FROM inbox WHERE seq <= ?", (acked,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ reading (the applier)

    async def take(self, limit: int) -> list[Record]:
        """Committed records not yet handed out, oldest first; waits until there is at least one."""
        while not self._ready:
            self._ready_event.clear()
            await self._ready_event.wait()
        out: list[Record] = []
        while self._ready and len(out) < limit:
            out.append(self._ready.popleft())
        return out

    def take_ready(self, limit: int) -> list[Record]:
        """Like ``take`` without waiting: what is ready now, possibly nothing."""
        out: list[Record] = []
        while self._ready and len(out) < limit:
            out.append(self._ready.popleft())
        return out

    def backlog(self) -> int:
        """Committed records waiting for the applier."""
        return len(self._ready)

    def oldest_received_at(self) -> datetime | None:
        """When the oldest record waiting for the applier was received (``None``: nothing waits)."""
        return self._ready[0].received_at if self._ready else None

    def lag_s(self, now: datetime) -> float:
        """How far the applier is behind: seconds since the oldest waiting record arrived (0 when none waits)."""
        oldest = self.oldest_received_at()
        return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    async def audit_frames(self, station_id: str, limit: int = 100) -> list[tuple[datetime, str, str]]:
        """Newest first: (at, direction, frame)."""

        def read() -> list[tuple[datetime, str, str]]:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT at, direction, frame FROM audit WHERE station_id = ? ORDER BY id DESC LIMIT ?",
                    (station_id, limit),
                ).fetchall()
            return [(datetime.fromisoformat(a).astimezone(UTC), d, f) for a, d, f in rows]

        return await asyncio.to_thread(read)
