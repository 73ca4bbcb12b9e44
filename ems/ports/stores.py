"""The stores of stations, cards, sessions, samples, signals and API keys, and ``Storage``: every store, one database.

A consumer takes the one store it uses (``StationStore``, ``SessionStore`` ...); only the
composition root holds the whole ``Storage``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from ems.domain.access import ApiKey, OperatorAccount
from ems.domain.capacity import CapacitySignal, SignalAudit
from ems.domain.card import Card
from ems.domain.quarantine import QuarantinedMessage, QuarantineSource
from ems.domain.session import ChargingSession, MeterSample
from ems.domain.station import ConnectorStatusRecord, Station
from ems.ports.billing import BillingStores
from ems.ports.web import DriverAuthStore


class StationStore(Protocol):
    async def add(self, station: Station) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def get(self, station_id: str) -> Station | None: ...

    async def all(self) -> list[Station]: ...

    async def update(self, station: Station) -> None:
        """Replace every field of an existing station; raises ``NotFound``."""
        ...

    async def delete(self, station_id: str) -> bool:
        """Deletes its status history too; raises ``Conflict`` while sessions refer to the station."""
        ...

    async def mark_seen(self, station_id: str, at: datetime, *, online: bool) -> None:
        """Raises ``NotFound``."""
        ...

    async def record_status(self, record: ConnectorStatusRecord) -> None:
        """Raises ``NotFound`` for an unknown station."""
        ...

    async def status_history(self, station_id: str, *, limit: int = 100) -> list[ConnectorStatusRecord]:
        """Newest first."""
        ...


class CardStore(Protocol):
    async def add(self, card: Card) -> None:
        """Raises ``Conflict`` if the uid exists."""
        ...

    async def get(self, uid: str) -> Card | None: ...

    async def all(self) -> list[Card]: ...

    async def update(self, card: Card) -> None:
        """Raises ``NotFound``."""
        ...

    async def delete(self, uid: str) -> bool: ...


class SessionStore(Protocol):
    async def add(self, session: ChargingSession) -> None:
        """Raises ``Conflict`` if the id or (station_id, transaction_id) exists, or the station does not."""
        ...

    async def get(self, session_id: str) -> ChargingSession | None: ...

    async def find_by_transaction(self, station_id: str, transaction_id: str) -> ChargingSession | None: ...

    async def active_for_evse(self, station_id: str, evse_id: int) -> ChargingSession | None:
        """The newest active session on the EVSE."""
        ...

    async def query(
        self,
        *,
        station_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        active_only: bool = False,
        limit: int = 100,
    ) -> list[ChargingSession]:
        """Sessions started in ``[since, until)``, newest first."""
        ...

    async def finished(
        self, *, since: datetime, id_tag: str | None = None, limit: int = 100_000
    ) -> list[ChargingSession]:
        """Completed sessions started at or after ``since``, newest first (``SessionHistory``)."""
        ...

    async def update(self, session: ChargingSession) -> None:
        """Replace every field of an existing session; raises ``NotFound``."""
        ...

    async def next_transaction_id(self) -> int:
        """A fresh positive integer for OCPP 1.6 StartTransaction, unique across restarts."""
        ...


class SessionHistory(Protocol):
    """Finished sessions, read for the departure and energy estimates (``ems.optimizer.estimates``)."""

    async def finished(
        self, *, since: datetime, id_tag: str | None = None, limit: int = 100_000
    ) -> list[ChargingSession]:
        """Completed sessions (with a stop time) started at or after ``since``, newest first; ``id_tag``:
        only that card's."""
        ...


class QuarantineStore(Protocol):
    """Inbound messages that could not be applied, with their reasons (``ems.domain.quarantine``)."""

    async def add(self, entry: QuarantinedMessage) -> bool:
        """Store ``entry``; ``False`` if the same message (same id) is there already."""
        ...

    async def list(
        self, *, limit: int = 100, offset: int = 0, source: QuarantineSource | None = None
    ) -> list[QuarantinedMessage]:
        """Newest first."""
        ...

    async def count(self, source: QuarantineSource | None = None) -> int: ...


class MeterSampleStore(Protocol):
    async def add_many(self, samples: Sequence[MeterSample]) -> None:
        """Write a batch (COPY on PostgreSQL); all or nothing. A NaN value raises ``InvalidInput``."""
        ...

    async def for_session(self, session_id: str) -> list[MeterSample]:
        """Oldest first."""
        ...

    async def count(self) -> int:
        """How many samples are stored."""
        ...

    async def for_station(
        self, station_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 10_000
    ) -> list[MeterSample]:
        """Samples measured in ``[since, until)``, oldest first."""
        ...


class CapacitySignalStore(Protocol):
    async def add(
        self, signal: CapacitySignal, *, accepted: bool, error: str | None = None, payload: str | None = None
    ) -> int:
        """Every received signal, accepted or rejected, for audit; returns its id."""
        ...

    async def add_many(self, records: Sequence[SignalAudit]) -> None:
        """A batch in one transaction, all or nothing (the grid service's audit writer)."""
        ...

    async def for_site(self, site_id: str, *, limit: int = 100) -> list[tuple[CapacitySignal, bool, str | None]]:
        """Newest first: (signal, accepted, error)."""
        ...

    async def audit(self, site_id: str, *, limit: int = 100) -> list[SignalAudit]:
        """Newest first, with the raw payload of rejected signals."""
        ...


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey) -> None:
        """Raises ``Conflict`` if the id or the hash exists."""
        ...

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not: the caller checks ``revoked_at``."""
        ...

    async def all(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """True if the key existed and was active; a revoked key keeps its first revocation time."""
        ...


class OperatorStore(Protocol):
    """Operator accounts for the console (email + hashed password)."""

    async def add(self, account: OperatorAccount) -> None:
        """Raises ``Conflict`` if the id or the email exists."""
        ...

    async def by_email(self, email: str) -> OperatorAccount | None:
        """``email`` lower-cased by the caller."""
        ...

    async def get(self, operator_id: str) -> OperatorAccount | None: ...

    async def all(self) -> list[OperatorAccount]: ...

    async def set_password(self, operator_id: str, password_hash: str) -> bool:
        """True if the account existed."""
        ...


class OcppStores(Protocol):
    """What the OCPP side reads and writes (``ems.ocpp`` service and applier): stations, sessions, samples."""

    @property
    def stations(self) -> StationStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def samples(self) -> MeterSampleStore: ...

    @property
    def quarantine(self) -> QuarantineStore: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...


class Storage(Protocol):
    """Every store, one database. ``health()`` raises ``StorageUnavailable`` when it cannot answer."""

    # Read-only members, so a concrete store type satisfies the Protocol (attributes would be invariant).
    @property
    def stations(self) -> StationStore: ...

    @property
    def cards(self) -> CardStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def samples(self) -> MeterSampleStore: ...

    @property
    def signals(self) -> CapacitySignalStore: ...

    @property
    def api_keys(self) -> ApiKeyStore: ...

    @property
    def billing(self) -> BillingStores: ...

    @property
    def quarantine(self) -> QuarantineStore: ...

    @property
    def operators(self) -> OperatorStore: ...

    @property
    def driver_auth(self) -> DriverAuthStore:
        """Driver PINs and signed-in web sessions (the driver pages, ``ems.web``)."""
        ...

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Make every store call inside the block (in this task) one transaction: all or nothing.

        ``async with storage.transaction(): ...`` commits when the block ends and rolls back
        everything when it raises. Blocks nest (savepoints). A store call from a task started
        inside the block raises ``StorageError``.
        """
        ...

    async def health(self) -> None: ...

    async def close(self) -> None: ...
