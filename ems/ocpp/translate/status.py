"""Status words: connector status and authorization answers, both versions."""

from __future__ import annotations

from datetime import datetime

from ems.domain.card import AuthorizationStatus
from ems.domain.station import ConnectorStatus
from ems.ocpp.translate.wire import Payload, format_time

_V16_STATUS = {s.value: s for s in ConnectorStatus}
_V201_STATUS = {
    "Available": ConnectorStatus.AVAILABLE,
    "Occupied": ConnectorStatus.OCCUPIED,
    "Reserved": ConnectorStatus.RESERVED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}
_TO_V201 = {
    ConnectorStatus.PREPARING: "Occupied",
    ConnectorStatus.CHARGING: "Occupied",
    ConnectorStatus.SUSPENDED_EV: "Occupied",
    ConnectorStatus.SUSPENDED_EVSE: "Occupied",
    ConnectorStatus.FINISHING: "Occupied",
}


def connector_status(word: str) -> ConnectorStatus:
    """1.6 ChargePointStatus or 2.0.1 ConnectorStatusEnumType -> ``ConnectorStatus``.

    The two vocabularies share their common words; an unknown word (a vendor's
    extension) reads as ``UNAVAILABLE`` rather than failing the message.
    """
    return _V16_STATUS.get(word) or _V201_STATUS.get(word) or ConnectorStatus.UNAVAILABLE


def connector_status_v201(status: ConnectorStatus) -> str:
    """The 2.0.1 word for a status (2.0.1 folds 1.6's charging states into ``Occupied``)."""
    return _TO_V201.get(status, status.value)


# 2.0.1 has no Expired/ConcurrentTx distinction problems; it has more words than 1.6.
_V16_AUTH = {
    AuthorizationStatus.ACCEPTED: "Accepted",
    AuthorizationStatus.BLOCKED: "Blocked",
    AuthorizationStatus.EXPIRED: "Expired",
    AuthorizationStatus.INVALID: "Invalid",
    AuthorizationStatus.NO_CREDIT: "Invalid",
    AuthorizationStatus.CONCURRENT_TX: "ConcurrentTx",
}


def id_tag_info_v16(status: AuthorizationStatus, expires_at: datetime | None = None) -> Payload:
    """1.6 ``IdTagInfo``. 1.6 has no NoCredit: it is sent as ``Invalid``."""
    info: Payload = {"status": _V16_AUTH[status]}
    if expires_at is not None:
        info["expiryDate"] = format_time(expires_at)
    return info


def id_token_info_v201(status: AuthorizationStatus, expires_at: datetime | None = None) -> Payload:
    """2.0.1 ``IdTokenInfoType``; every ``AuthorizationStatus`` word exists in 2.0.1."""
    info: Payload = {"status": status.value}
    if expires_at is not None:
        info["cacheExpiryDateTime"] = format_time(expires_at)
    return info


def authorization_status(word: str) -> AuthorizationStatus:
    """A station-side word back to the domain (used by the simulator); unknown words are ``INVALID``."""
    try:
        return AuthorizationStatus(word)
    except ValueError:
        return AuthorizationStatus.INVALID
