"""Billing records: users, prepaid accounts, tariff assignments, charge detail records, per-session
costs, idempotency claims. Pure values; the rules that make them are in ``ems.billing``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ems.domain.ledger import Balance, Hold, Movement
from ems.domain.money import Money


class LineKind(StrEnum):
    SESSION_FEE = "session_fee"
    ENERGY = "energy"
    CHARGING_TIME = "charging_time"
    PARKING_TIME = "parking_time"
    IDLE_TIME = "idle_time"
    MINIMUM_PRICE = "minimum_price"
    MAXIMUM_PRICE = "maximum_price"
    VAT = "vat"


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """The energy import register (Wh, lifetime or session-relative, but one of them per session) at ``at``."""

    at: datetime
    register_wh: Decimal


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """What a session used: its start and stop (UTC) and its energy register readings."""

    started_at: datetime
    stopped_at: datetime
    readings: tuple[EnergyReading, ...] = ()
    charging_ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LineItem:
    kind: LineKind
    description: str
    quantity: Decimal
    """In ``unit``, rounded for display (kWh: 3 decimals, min: 2); the amount uses the exact quantity."""
    unit: str
    """``"kWh"``, ``"min"``, ``"session"`` or ``""`` (adjustments, VAT)."""
    unit_price: Decimal | None
    amount: Money
    """Rounded to the minor unit (ROUND_HALF_EVEN)."""
    band: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeDetailRecord:
    """The priced session. Invariant: ``sum(line.amount) == total`` and ``net + vat == total``."""

    tariff_id: str
    currency: str
    started_at: datetime
    stopped_at: datetime
    charging_ended_at: datetime
    energy_wh: Decimal
    """Total energy delivered, to the Wh (display); lines use the exact value."""
    line_items: tuple[LineItem, ...]
    net: Money
    vat: Money
    total: Money


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    created_at: datetime
    phone: str | None = None
    email: str | None = None
    group: str | None = None
    """User group, for group tariffs (e.g. ``"staff"``, ``"fleet-acme"``)."""


@dataclass(frozen=True, slots=True)
class Account:
    """A prepaid account. Its balance is never stored: it is the sum of its ledger entries."""

    id: str
    currency: str
    created_at: datetime
    user_id: str | None = None


class AssignmentScope(StrEnum):
    SITE = "site"
    STATION = "station"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class TariffAssignment:
    scope: AssignmentScope
    scope_id: str
    tariff_id: str


@dataclass(frozen=True, slots=True)
class SessionCost:
    """What a session cost: its charge detail record, and what the ledger took for it."""

    session_id: str
    station_id: str
    cdr: ChargeDetailRecord
    priced_at: datetime
    account_id: str | None = None
    """``None`` for personal cards: priced for the record, not billed."""
    card_uid: str | None = None
    hold_id: str | None = None
    captured_minor: int = 0
    uncollected_minor: int = 0


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An Idempotency-Key for one operation: a replay returns the first result; another body is a conflict."""

    scope: str
    key: str
    request_hash: str

    @staticmethod
    def for_request(scope: str, key: str, body: Mapping[str, Any]) -> IdempotencyClaim:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return IdempotencyClaim(scope, key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class Applied:
    """A posted movement and the balance right after it; ``replayed`` when an idempotent replay returned it."""

    movement: Movement
    balance_after: Balance
    holds: tuple[Hold, ...] = ()
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class PaymentCheckout:
    """Where to send the driver to pay a top-up outside ems; the provider's webhook confirms it later."""

    provider: str
    reference: str
    redirect_url: str
