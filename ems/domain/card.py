"""RFID cards (OCPP id tokens) and the pure rule that says whether one may charge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CardStatus(StrEnum):
    ACCEPTED = "accepted"
    BLOCKED = "blocked"


class CardMode(StrEnum):
    PERSONAL = "personal"
    """Swipe and charge; nothing is billed."""
    COMMERCIAL = "commercial"
    """Prepaid: authorized only with enough balance; held at start, captured at stop."""


class AuthorizationStatus(StrEnum):
    """Version-neutral answer to a charger's Authorize (OCPP renders it for 1.6 / 2.0.1)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    NO_CREDIT = "NoCredit"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True, slots=True)
class Card:
    uid: str
    status: CardStatus = CardStatus.ACCEPTED
    expires_at: datetime | None = None
    mode: CardMode = CardMode.PERSONAL
    account_id: str | None = None
    user_id: str | None = None
    label: str | None = None
    created_at: datetime | None = None

    def authorization_at(self, now: datetime) -> AuthorizationStatus:
        """Card-level answer at ``now``; balance checks for commercial cards come on top."""
        if self.status is CardStatus.BLOCKED:
            return AuthorizationStatus.BLOCKED
        if self.expires_at is not None and self.expires_at <= now:
            return AuthorizationStatus.EXPIRED
        return AuthorizationStatus.ACCEPTED


def authorize_card(card: Card | None, now: datetime) -> AuthorizationStatus:
    """An unknown card is ``INVALID``; otherwise the card's own rule."""
    return AuthorizationStatus.INVALID if card is None else card.authorization_at(now)


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    status: AuthorizationStatus
    reason: str | None = None
    """Why not, in words a driver can read (e.g. "balance 0.40 EUR is below the 5.00 EUR minimum")."""
    expires_at: datetime | None = None
    """How long a station may cache the answer (OCPP idTagInfo.expiryDate / cacheExpiryDateTime)."""
    account_id: str | None = None
