"""Billing records: users, prepaid accounts, tariff assignments, per-session costs, idempotency. Pure values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ems.billing.ledger import Balance, Book, Hold, Movement
from ems.billing.pricing import ChargeDetailRecord


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


def resolve_tariff_id(
    assignments: Sequence[TariffAssignment], *, site_id: str | None, station_id: str | None, group: str | None
) -> str | None:
    """The tariff in force: the user's group's, else the station's, else the site's default, else none."""
    for scope, scope_id in (
        (AssignmentScope.GROUP, group),
        (AssignmentScope.STATION, station_id),
        (AssignmentScope.SITE, site_id),
    ):
        if scope_id is None:
            continue
        for a in assignments:
            if a.scope is scope and a.scope_id == scope_id:
                return a.tariff_id
    return None


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


def settled_cost(cost: SessionCost, movement: Movement | None) -> SessionCost:
    """``cost`` with what ``movement`` (its capture) actually took; stores call this when writing both."""
    if movement is None:
        return cost
    uncollected = -movement.on(Book.UNCOLLECTED)
    return replace(
        cost,
        account_id=movement.account_id,
        hold_id=movement.hold_id,
        captured_minor=movement.on(Book.REVENUE) - uncollected,
        uncollected_minor=uncollected,
    )


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
