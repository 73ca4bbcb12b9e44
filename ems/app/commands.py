"""The CLI's one-shot admin commands: each opens the runtime (settings, sites, storage), runs one
use case of ``ems.services`` (or a storage maintenance step) and closes it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from ems.app import open_runtime, policy_from, station_tariffs
from ems.config import Settings
from ems.domain.access import ApiKey, OperatorAccount, Role
from ems.domain.card import Card, CardStatus
from ems.domain.station import Station
from ems.errors import InvalidInput
from ems.report_html import render as render_site_month
from ems.services.admin import MAX_KEY_DAYS, register_card, register_station
from ems.services.admin import create_api_key as new_key
from ems.services.billing_setup import build_billing
from ems.services.operators import create_operator as new_operator
from ems.services.operators import operator_problems
from ems.storage.analyst_role import create_analyst_role
from ems.storage.analytics import site_month
from ems.storage.factory import SqlStorage, open_database
from ems.storage.migrate import upgrade
from ems.web.qr import site_stickers, sticker_sheet


async def upgrade_database(settings: Settings) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    db = await open_database(settings)
    try:
        return await upgrade(db)
    finally:
        await db.close()


async def rebuild_rollups(settings: Settings) -> dict[str, int]:
    """Recompute every analytics rollup from the raw rows (after an upgrade or a site file change)."""
    async with open_runtime(settings) as runtime:
        storage = runtime.storage
        assert isinstance(storage, SqlStorage)
        await storage.rollups.place_sites(runtime.sites)
        return await storage.rollups.rebuild()


async def analyst_role(settings: Settings, name: str, password: str | None) -> str:
    """Create (or update) a read-only PostgreSQL role for analysts; returns the schema it reads."""
    async with open_runtime(settings) as runtime:
        storage = runtime.storage
        assert isinstance(storage, SqlStorage)
        return await create_analyst_role(storage.db, name, password)


async def site_report(settings: Settings, site_id: str, month: date) -> str:
    """The monthly site report (self-contained HTML); raises ``InvalidInput`` for a site not in the site files."""
    async with open_runtime(settings) as runtime:
        storage = runtime.storage
        assert isinstance(storage, SqlStorage)
        site = next((s for s in runtime.sites if s.id == site_id), None)
        if site is None:
            known = ", ".join(s.id for s in runtime.sites) or "none"
            raise InvalidInput("unknown site", [f"--site: no site {site_id!r} (sites: {known})"])
        await storage.rollups.place_sites(runtime.sites)
        return render_site_month(await site_month(storage.analytics, site.id, site.name, month))


async def add_station(settings: Settings, station_id: str, password: str | None) -> Station:
    async with open_runtime(settings) as runtime:
        return await register_station(runtime.storage.stations, runtime.clock, station_id, password=password)


async def add_card(settings: Settings, uid: str, *, blocked: bool, expires: datetime | None, label: str | None) -> Card:
    if expires is not None and expires.tzinfo is None:
        raise InvalidInput("--expires needs a UTC offset, e.g. 2027-01-01T00:00+00:00")
    async with open_runtime(settings) as runtime:
        card = Card(
            uid=uid,
            status=CardStatus.BLOCKED if blocked else CardStatus.ACCEPTED,
            expires_at=expires,
            label=label,
            created_at=runtime.clock.now(),
        )
        return await register_card(runtime.storage.cards, card)


async def create_api_key(
    settings: Settings, name: str, role: str, *, expires_in_days: int | None = None
) -> tuple[str, ApiKey]:
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_KEY_DAYS:  # before opening the database
        raise InvalidInput(f"--expires-in-days must be 1 to {MAX_KEY_DAYS}")
    async with open_runtime(settings) as runtime:
        return await new_key(runtime.storage.api_keys, runtime.clock, name, Role(role), expires_in_days=expires_in_days)


async def create_operator(settings: Settings, email: str, password: str, role: str) -> OperatorAccount:
    problems = operator_problems(email, password)  # before opening the database
    if problems:
        raise InvalidInput("cannot create operator", problems)
    async with open_runtime(settings) as runtime:
        return await new_operator(runtime.storage.operators, runtime.clock, email, password, Role(role))


async def print_stickers(settings: Settings, site_id: str, out: Path) -> tuple[Path, int]:
    """``ems qr``: a PDF sheet of QR stickers for every EVSE of ``site_id``; returns the file and the count."""
    async with open_runtime(settings) as runtime:
        billing = build_billing(runtime.storage, clock=runtime.clock, policy=policy_from(settings, runtime.sites))
        stickers = await site_stickers(
            runtime.sites, site_id, runtime.storage.stations, station_tariffs(billing), settings.public_base_url()
        )
    return sticker_sheet(stickers, out), len(stickers)
