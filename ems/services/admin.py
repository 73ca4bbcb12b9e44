"""Administration use cases, shared by the CLI (``ems station add`` ...) and the REST API.

Each takes the one store it writes and the clock; the checks and the error wording live here once.
"""

from __future__ import annotations

import secrets

from ems.clock import Clock
from ems.domain.access import ApiKey, Role
from ems.domain.card import Card
from ems.domain.station import Station
from ems.errors import Conflict, InvalidInput
from ems.ports.stores import ApiKeyStore, CardStore, StationStore
from ems.security import hash_api_key, hash_password, new_api_key, password_problem


async def register_station(
    stations: StationStore,
    clock: Clock,
    station_id: str,
    *,
    password: str | None = None,
    site_id: str | None = None,
    circuit_id: str | None = None,
) -> Station:
    """Add a station (its password stored hashed); ``InvalidInput`` for a weak password, ``Conflict`` if taken."""
    problem = None if password is None else password_problem(password)
    if problem:
        raise InvalidInput(f"cannot register station {station_id}", [problem])
    station = Station(
        id=station_id,
        password_hash=hash_password(password) if password else None,
        site_id=site_id,
        circuit_id=circuit_id,
        registered_at=clock.now(),
    )
    try:
        await stations.add(station)
    except Conflict as exc:
        raise Conflict(f"station {station_id!r} already exists") from exc
    return station


async def register_card(cards: CardStore, card: Card) -> Card:
    """Add ``card``; ``Conflict`` if its uid is taken."""
    try:
        await cards.add(card)
    except Conflict as exc:
        raise Conflict(f"card {card.uid!r} already exists") from exc
    return card


async def create_api_key(
    keys: ApiKeyStore, clock: Clock, name: str, role: Role, *, user_id: str | None = None
) -> tuple[str, ApiKey]:
    """A new key and its record; the key itself is returned once and stored only as a hash."""
    key = new_api_key()
    record = ApiKey(
        id=secrets.token_hex(8),
        name=name,
        role=role,
        key_hash=hash_api_key(key),
        created_at=clock.now(),
        user_id=user_id,
    )
    await keys.add(record)
    return key, record
