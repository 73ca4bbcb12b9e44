"""The small Protocols the controller and the API talk through.

Adapters implement these; the composition root (``ems.app``) passes the concrete ones
in. Keep each Protocol small: a caller depends only on what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ems.billing.ledger import AccountState, Balance, Decision, Hold
from ems.billing.model import (
    Account,
    Applied,
    AssignmentScope,
    IdempotencyClaim,
    SessionCost,
    TariffAssignment,
    User,
)
from ems.billing.tariff import Tariff
from ems.domain.access import ApiKey
from ems.domain.capacity import CapacityInterval, CapacitySignal, SignalKind, SignalSource
from ems.domain.card import AuthorizationStatus, Card
from ems.domain.commands import CommandResult, StationCommand
from ems.domain.money import Money
from ems.domain.quarantine import QuarantinedMessage, QuarantineSource
from ems.domain.session import ChargingSession, MeterSample
from ems.domain.station import ConnectorStatusRecord, Station
from ems.domain.units import Phase

# ---------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    status: AuthorizationStatus
    reason: str | None = None
    """Why not, in words a driver can read (e.g. "balance 0.40 EUR is below the 5.00 EUR minimum")."""
    expires_at: datetime | None = None
    """How long a station may cache the answer (OCPP idTagInfo.expiryDate / cacheExpiryDateTime)."""
    account_id: str | None = None


class Authorizer(Protocol):
    async def authorize(self, id_tag: str, *, station_id: str, evse_id: int | None = None) -> AuthorizationDecision:
        """May ``id_tag`` charge at this station? Decided from the card, and for prepaid cards its balance."""
        ...


class ChargerControl(Protocol):
    async def execute(self, station_id: str, command: StationCommand) -> CommandResult:
        """Send ``command`` and wait for the station's answer; never raises for station faults."""
        ...

    def is_online(self, station_id: str) -> bool: ...


# ---------------------------------------------------------------- grid capacity


@dataclass(frozen=True, slots=True)
class SiteLoadReading:
    """What a site draws now, from the latest meter samples (the controller's live state)."""

    phase_power_w: Mapping[Phase, float] = field(default_factory=dict)
    """Active power per grid phase in W; a phase absent: not measured."""
    phase_current_a: Mapping[Phase, float] = field(default_factory=dict)
    active_sessions: int = 0
    measured_at: datetime | None = None
    """Time of the oldest sample in the sum; ``None``: nothing measured yet."""

    @property
    def power_w(self) -> float | None:
        return sum(self.phase_power_w.values()) if self.phase_power_w else None


class SiteLoad(Protocol):
    """Live site state, read by the grid status publisher; implemented by the controller."""

    def site_load(self, site_id: str) -> SiteLoadReading:
        """Measured load of ``site_id`` (an empty reading when nothing is known); never blocks."""
        ...


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """The answer to one capacity signal, whichever door (MQTT, API, simulator) it came in by."""

    accepted: bool
    signal: CapacitySignal
    """The signal as applied; for a rejected one, what could be read of it (no blocks)."""
    reply: Mapping[str, Any]
    """The JSON body of the ack (accepted) or error (rejected) message."""
    problems: tuple[str, ...] = ()
    duplicate: bool = False
    in_force: CapacityInterval | None = None


class CapacitySignals(Protocol):
    """The one door for capacity signals, used by the MQTT adapter, the API and the simulator."""

    def site_ids(self) -> list[str]: ...

    async def submit(
        self,
        raw: bytes | str | Mapping[str, Any],
        *,
        site_id: str,
        source: SignalSource,
        kind: SignalKind | None = None,
        circuit_id: str | None = None,
        fresh: bool = True,
    ) -> SignalOutcome:
        """Validate, apply, persist, publish events; never raises for a bad signal (see ``accepted``)."""
        ...

    def timeline(
        self, site_id: str, circuit_id: str | None = None, *, horizon_s: float = 86_400.0
    ) -> list[CapacityInterval]:
        """The effective capacity from now over ``horizon_s``; raises ``NotFound`` for an unknown target."""
        ...

    def in_force(self, site_id: str, circuit_id: str | None = None) -> CapacityInterval:
        """What is in force now, until its next known change (``OPEN_END``: none known)."""
        ...

    def latest(self, site_id: str, circuit_id: str | None, kind: SignalKind) -> CapacitySignal | None:
        """The forecast or immediate limit in force for a target (expired blocks dropped)."""
        ...

    def status(self, site_id: str) -> Mapping[str, Any]:
        """The site status message body: measured load, limit in force, headroom, stale flag."""
        ...


# ---------------------------------------------------------------- stores


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

    async def update(self, session: ChargingSession) -> None:
        """Replace every field of an existing session; raises ``NotFound``."""
        ...

    async def next_transaction_id(self) -> int:
        """A fresh positive integer for OCPP 1.6 StartTransaction, unique across restarts."""
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

    async def for_station(
        self, station_id: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 10_000
    ) -> list[MeterSample]:
        """Samples measured in ``[since, until)``, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class SignalAudit:
    """One received capacity signal as the audit log keeps it."""

    signal: CapacitySignal
    """For a rejected signal, what could be read of it (no blocks)."""
    accepted: bool
    error: str | None = None
    payload: str | None = None
    """The raw body of a rejected signal, cut to ``MAX_AUDIT_PAYLOAD_CHARS``; ``None`` for an accepted one."""


MAX_AUDIT_PAYLOAD_CHARS = 4096


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


# ---------------------------------------------------------------- billing


class UserStore(Protocol):
    async def add(self, user: User) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def all(self, *, limit: int = 1000) -> list[User]: ...

    async def update(self, user: User) -> None:
        """Raises ``NotFound``."""
        ...


class LedgerStore(Protocol):
    """Accounts, their double-entry ledger, holds and idempotency keys.

    ``apply`` is the only way money moves: in one transaction it locks the account (PostgreSQL
    ``SELECT ... FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``), answers an idempotent replay from
    the key's first result (same key, other request: ``IdempotencyConflict``), reads the
    ``AccountState``, calls the pure ``decide`` rule, re-checks that no balance goes below zero,
    and writes the movement, its entries, the holds it touched, ``cost`` and the key.
    """

    async def open_account(self, account: Account) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def account(self, account_id: str) -> Account | None: ...

    async def accounts_for_user(self, user_id: str) -> list[Account]: ...

    async def balance(self, account_id: str) -> Balance:
        """Sum of the account's entries per book; raises ``NotFound``."""
        ...

    async def apply(
        self,
        account_id: str,
        decide: Callable[[AccountState], Decision],
        *,
        idempotency: IdempotencyClaim | None = None,
        cost: SessionCost | None = None,
        session_id: str | None = None,
    ) -> Applied:
        """``session_id``: also read that session's revenue (charged minus refunded) into the state."""
        ...

    async def statement(self, account_id: str, *, limit: int = 100) -> list[Applied]:
        """Movements with the balance after each, newest first."""
        ...

    async def hold(self, hold_id: str) -> Hold | None: ...

    async def hold_for_session(self, session_id: str) -> Hold | None: ...

    async def open_holds(self, *, id_tag: str | None = None, unlinked_only: bool = False) -> list[Hold]:
        """Open holds, oldest first; ``unlinked_only``: not yet tied to a session (app starts in flight)."""
        ...

    async def link_hold(self, hold_id: str, session_id: str) -> Hold:
        """Tie an open, unlinked hold to the session it pays for (no money moves); raises ``NotFound``."""
        ...


class TariffStore(Protocol):
    async def add(self, tariff: Tariff) -> None:
        """Raises ``Conflict`` if the id exists."""
        ...

    async def get(self, tariff_id: str) -> Tariff | None: ...

    async def all(self) -> list[Tariff]: ...

    async def update(self, tariff: Tariff) -> None:
        """Raises ``NotFound``."""
        ...

    async def delete(self, tariff_id: str) -> bool:
        """Raises ``Conflict`` while the tariff is assigned."""
        ...

    async def assign(self, assignment: TariffAssignment) -> None:
        """Make ``tariff_id`` the one for the scope (replacing any); raises ``NotFound`` for an unknown tariff."""
        ...

    async def unassign(self, scope: AssignmentScope, scope_id: str) -> bool: ...

    async def assignments(self) -> list[TariffAssignment]: ...


class CostStore(Protocol):
    async def add(self, cost: SessionCost) -> bool:
        """Record a session's cost once; ``False`` (nothing written) if it has one already."""
        ...

    async def get(self, session_id: str) -> SessionCost | None: ...

    async def query(
        self,
        *,
        account_id: str | None = None,
        station_id: str | None = None,
        card_uid: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[SessionCost]:
        """By session start time, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class PaymentCheckout:
    """Where to send the driver to pay a top-up outside ems; the provider's webhook confirms it later."""

    provider: str
    reference: str
    redirect_url: str


class PaymentProvider(Protocol):
    """A payment service for top-ups (card, wallet, bank). Confirmation arrives on the signed webhook
    (``POST /api/v1/payments/{provider}/webhook``), never from the redirect."""

    name: str

    async def create_checkout(self, account_id: str, amount: Money, *, return_url: str) -> PaymentCheckout: ...


class BillingStores(Protocol):
    @property
    def users(self) -> UserStore: ...

    @property
    def ledger(self) -> LedgerStore: ...

    @property
    def tariffs(self) -> TariffStore: ...

    @property
    def costs(self) -> CostStore: ...


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


# ---------------------------------------------------------------- live site view (controller)


@dataclass(frozen=True, slots=True)
class LiveSessionView:
    session_id: str
    station_id: str
    evse_id: int
    started_at: datetime
    power_w: float | None
    delivered_wh: float
    departure_at: datetime | None
    energy_requested_wh: float | None
    planned_power_w: float | None
    """What the current plan gives it now (first slot), W."""
    limited_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SitePlanView:
    site_id: str
    planned_at: datetime
    status: str
    algorithm: str
    solve_s: float
    start: datetime
    slot_s: int
    site_power_w: tuple[float, ...]
    sessions: int
    fully_served: int
    unmet_wh: float
    profiles_sent: int
    profiles_rejected: int
    violations: tuple[str, ...] = ()


class SiteMonitor(SiteLoad, Protocol):
    """What the controller knows live, for the API and dashboard; never blocks."""

    def live_sessions(self, site_id: str) -> list[LiveSessionView]: ...

    def plan(self, site_id: str) -> SitePlanView | None: ...
