"""The composition root: the only module that builds and wires every adapter.

``ems serve`` and ``ems demo`` come here, and the CLI's one-shot admin commands. This module only
builds: every object gets what it needs through its constructor, in an order that needs no
patching afterwards (see ``build_system``). Running is ``ems.supervisor``: a failing component is
logged with its traceback, shown in ``/health`` and ``/metrics`` and restarted where safe, never
taking the process down (a ``ConfigError`` at start does); the use cases are ``ems.services``;
the demo's scenario is ``ems.sim.demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ems.api.app import create_app
from ems.api.server import ApiServer
from ems.api.services import ApiServices
from ems.bus import EventBus
from ems.clock import Clock, SystemClock
from ems.config import Settings
from ems.console.deps import ConsoleDeps
from ems.console.routes import build_console
from ems.controller.loop import Controller
from ems.controller.state import LiveState
from ems.domain.access import ApiKey, OperatorAccount, Role
from ems.domain.card import Card, CardStatus
from ems.domain.events import CapacityChanged
from ems.domain.site import Site, default_site
from ems.domain.station import Station
from ems.errors import Conflict, InvalidInput
from ems.grid.capacity import CapacityPolicy
from ems.grid.mqtt import MqttGridAdapter, MqttOptions
from ems.health import SystemHealth
from ems.metrics import SystemCollector
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.runtime import OcppRuntime, journal_path, ocpp_config
from ems.ports.stores import Storage
from ems.report_html import render as render_site_month
from ems.services.admin import MAX_KEY_DAYS, register_card, register_station
from ems.services.admin import create_api_key as new_key
from ems.services.billing import BillingPolicy
from ems.services.billing_listener import BillingListener
from ems.services.billing_setup import Billing, build_billing
from ems.services.capacity import CapacityService
from ems.services.drivers import DriverAuth
from ems.services.operators import create_operator as new_operator
from ems.services.operators import operator_problems
from ems.services.plan_recorder import PlanRecorder
from ems.sim.clock import ScaledClock
from ems.sim.demo import (
    DEMO_SPEED,
    DemoSummary,
    demo_fleets,
    demo_grid_operator,
    demo_site,
    report_capacity_changes,
    summarize,
)
from ems.sim.demo_billing import DEMO_DRIVER_PHONE, DEMO_DRIVER_PIN, seed_demo_billing, seed_demo_driver
from ems.sim.fleet import DEFAULT_CARDS, FleetComponent
from ems.sitefile import load_site_file
from ems.storage.analytics import site_month
from ems.storage.factory import SqlStorage, open_database, open_storage
from ems.storage.migrate import upgrade
from ems.storage.rollups import create_analyst_role
from ems.supervisor import Component, Supervisor, first, install_signal_handlers, run_components
from ems.web.app import web_router
from ems.web.i18n import Texts
from ems.web.payments import TestPaymentProvider
from ems.web.qr import Sticker, evse_url, sticker_sheet
from ems.web.services import WebServices, WebSettings
from ems.web.views import price_lines

log = logging.getLogger(__name__)

DEMO_OPERATOR = "demo@ems.example"
"""The console account ``ems demo`` creates (an admin; its password is printed at start)."""


@dataclass
class Runtime:
    """Everything the components share; built once per process."""

    settings: Settings
    sites: tuple[Site, ...]
    clock: Clock
    bus: EventBus
    storage: Storage


def load_sites(settings: Settings) -> tuple[Site, ...]:
    """The sites from ``settings.site_file``; without one, the single site ``default``."""
    return load_site_file(settings.site_file) if settings.site_file else (default_site(),)


def policy_from(settings: Settings, sites: Sequence[Site]) -> BillingPolicy:
    return BillingPolicy(
        min_hold=settings.billing_min_hold,
        max_hold=settings.billing_max_hold,
        default_currency=settings.billing_currency,
        timezones={site.id: site.timezone for site in sites},
        station_sites={spec.id: site.id for site in sites for spec in site.stations},
        default_site=sites[0].id if len(sites) == 1 else None,
    )


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, clock: Clock | None = None, *, default: tuple[Site, ...] | None = None
) -> AsyncIterator[Runtime]:
    """Sites, storage and bus; ``default`` sites apply when the settings name no site file."""
    sites = load_sites(settings) if settings.site_file or default is None else default
    storage = await open_storage(settings)
    bus = EventBus()
    try:
        yield Runtime(settings=settings, sites=sites, clock=clock or SystemClock(), bus=bus, storage=storage)
    finally:
        bus.close()
        await storage.close()


@dataclass
class System:
    """Every wired component of one ems process (what ``serve`` and ``demo`` run)."""

    api: ApiServer
    ocpp: OcppRuntime
    capacity: CapacityService
    controller: Controller
    mqtt: MqttGridAdapter | None
    services: ApiServices
    billing: Billing
    billing_listener: BillingListener
    supervisor: Supervisor
    plan_recorder: PlanRecorder | None = None

    def components(self) -> list[Component]:
        out: list[Component] = [
            self.api,
            self.ocpp,
            self.capacity,
            self.controller,
            self.billing_listener,
        ]
        if self.mqtt is not None:
            out.append(self.mqtt)
        if self.plan_recorder is not None:
            out.append(self.plan_recorder)
        return out


def web_settings(settings: Settings) -> WebSettings:
    secret = settings.web_secret.get_secret_value().encode() if settings.web_secret else None
    if secret is None:
        log.warning("EMS_WEB_SECRET is not set: driver page forms are signed with a per-process key")
        secret = secrets.token_bytes(32)
    return WebSettings(public_url=settings.public_base_url(), secret=secret)


def build_web(runtime: Runtime, services: ApiServices) -> WebServices:
    """What the driver pages (``ems.web``) get: the same billing, stores and control the API uses."""
    storage = runtime.storage
    test = TestPaymentProvider() if runtime.settings.web_test_payments else None
    return WebServices(
        billing=services.billing,
        drivers=DriverAuth(storage.driver_auth, storage.billing.users, runtime.clock),
        stations=storage.stations,
        sessions=storage.sessions,
        samples=storage.samples,
        cards=storage.cards,
        clock=runtime.clock,
        sites=runtime.sites,
        control=services.charger_control,
        monitor=services.monitor,
        payments=test,
        test_payments=test,
    )


def build_api(runtime: Runtime, services: ApiServices) -> ApiServer:
    app = create_app(runtime.settings, services)
    app.include_router(build_console(console_deps(runtime.settings, services)))
    app.include_router(
        web_router(
            web_settings(runtime.settings), build_web(runtime, services), throttle=runtime.settings.throttle_settings()
        )
    )
    return ApiServer(app, runtime.settings.api_host, runtime.settings.api_port)


def console_deps(settings: Settings, services: ApiServices) -> ConsoleDeps:
    """The console's ports: the same services the API has, and the same bootstrap admin key."""
    admin = settings.admin_api_key
    return ConsoleDeps(
        storage=services.storage,
        clock=services.clock,
        sites=services.sites,
        billing=services.billing,
        charger_control=services.charger_control,
        monitor=services.monitor,
        capacity=services.capacity,
        admin_api_key=admin.get_secret_value() if admin is not None else None,
        throttle=settings.throttle_settings(),
    )


async def build_system(runtime: Runtime) -> System:
    """Wire every adapter for ``runtime``'s settings, each given what it needs when it is built.

    Order breaks the two loops by construction, not by patching later: the OCPP command control
    (over an empty link registry) exists before billing, which can then stop sessions, and before
    the OCPP server, which authorizes cards through billing; the live site state exists before
    the capacity service (which reports the measured load) and the controller (which keeps it).
    The controller subscribes before anything runs.
    """
    settings, storage, bus, clock = runtime.settings, runtime.storage, runtime.bus, runtime.clock
    # Back-off runs on real time even in the sped-up demo: a restart loop must not spin 60x faster.
    supervisor = Supervisor(SystemClock())
    secret = settings.payment_webhook_secret
    config = ocpp_config(settings)
    control = OcppChargerControl(LinkRegistry(), timeout_s=config.command_timeout_s)
    billing = build_billing(
        storage,
        clock=clock,
        policy=policy_from(settings, runtime.sites),
        control=control,  # remote stop at the hold; pay-before-start's RemoteStart
        webhook_secret=secret.get_secret_value().encode() if secret is not None else None,
    )
    ocpp = OcppRuntime(
        config,
        storage,
        bus,
        clock,
        journal_path=journal_path(settings),
        authorizer=billing.service,  # card status, expiry and prepaid balance
        control=control,
        supervisor=supervisor,  # the journal applier runs under it
    )
    # subscribes now, before anything publishes; a failure it cannot settle goes to the quarantine
    billing_listener = BillingListener(billing.service, bus, quarantine=storage.quarantine)
    live = LiveState(runtime.sites)
    # With MQTT configured a grid operator is expected, so the staleness watch starts now;
    # without, a site goes stale only after it has heard from one.
    watch_from = clock.now() if settings.mqtt_url else None
    capacity = CapacityService(
        CapacityPolicy(runtime.sites, watch_from=watch_from),
        bus=bus,
        clock=clock,
        store=storage.signals,
        site_load=live,
    )
    controller = Controller(
        sites=runtime.sites,
        bus=bus,
        clock=clock,
        sessions=storage.sessions,
        charger_control=control,
        capacity=capacity,
        state=live,
        history=storage.sessions,
    )
    controller.subscribe()
    mqtt = None
    if settings.mqtt_url:
        options = MqttOptions.from_url(
            settings.mqtt_url,
            username=settings.mqtt_username,
            password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
            tls_ca=settings.mqtt_tls_ca,
            client_id=settings.mqtt_client_id or f"ems-{socket.gethostname()}",
            status_interval_s=settings.mqtt_status_interval_s,
        )
        changes = bus.subscribe(CapacityChanged, name="grid-mqtt-status", maxsize=1_000)
        mqtt = MqttGridAdapter(capacity, options, changes=changes)
    analytics = None
    if isinstance(storage, SqlStorage):
        await storage.rollups.place_sites(runtime.sites)  # the site and time zone rollups bucket by
        analytics = storage.analytics
    services = ApiServices(
        analytics=analytics,
        storage=storage,
        clock=clock,
        sites=runtime.sites,
        billing=billing,
        bus=bus,
        charger_control=control,
        capacity=capacity,
        monitor=controller,
        health=SystemHealth(clock, supervisor=supervisor, ocpp=ocpp, controller=controller, mqtt=mqtt),
        metrics=SystemCollector(
            clock, supervisor=supervisor, ocpp=ocpp, controller=controller, capacity=capacity, mqtt=mqtt, bus=bus
        ),
    )
    api = build_api(runtime, services)
    system = System(api, ocpp, capacity, controller, mqtt, services, billing, billing_listener, supervisor)
    if isinstance(storage, SqlStorage):  # the planned load and capacity in force, for the load curve
        sites = tuple(site.id for site in runtime.sites)
        system.plan_recorder = PlanRecorder(sites, controller, capacity, storage.rollups, clock)
    return system


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    try:
        async with open_runtime(settings) as runtime:
            system = await build_system(runtime)
            async with asyncio.TaskGroup() as group:
                group.create_task(_announce(system, runtime, stop), name="announce")
                group.create_task(run_components(system.components(), stop, system.supervisor), name="components")
    finally:
        remove()


async def _servers_up(system: System, stop: asyncio.Event) -> bool:
    """True once the API and the OCPP server both listen; False if ``stop`` came first."""
    return await first(system.api.started, stop) and await first(system.ocpp.started, stop)


async def _announce(system: System, runtime: Runtime, stop: asyncio.Event) -> None:
    api = system.api
    if not await _servers_up(system, stop):
        return
    backend = runtime.storage.backend
    print(f"ems: API on {api.url} (OpenAPI docs at {api.url}/docs, console at {api.url}/console)", flush=True)
    print(f"ems: OCPP on {system.ocpp.url}/<station-id> (ocpp1.6, ocpp2.0.1), storage: {backend}", flush=True)
    if system.mqtt is not None:
        print(f"ems: grid signals over MQTT at {system.mqtt.options.host}:{system.mqtt.options.port}", flush=True)
    if runtime.settings.admin_api_key is None:
        print("ems: EMS_ADMIN_API_KEY is not set: create a key with `ems apikey create` to use /api/v1", flush=True)


async def demo(settings: Settings, duration_s: float | None) -> DemoSummary:
    """``ems serve`` plus simulated stations of both OCPP versions on an embedded database.

    The whole process runs on one sped-up clock (``DEMO_SPEED``), so the stations, the
    controller and the grid signals agree on time: a minute of demo is an hour of car park.
    """
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    clock = ScaledClock(SystemClock(), DEMO_SPEED)
    try:
        async with open_runtime(settings, clock, default=(demo_site(),)) as runtime:
            for uid in DEFAULT_CARDS:
                with contextlib.suppress(Conflict):
                    await runtime.storage.cards.add(Card(uid=uid, label="demo driver", created_at=clock.now()))
            system = await build_system(runtime)
            # Prepaid accounts behind the demo cards and a tariff per site: sessions priced, balances moving.
            await seed_demo_billing(system.billing, runtime.storage, runtime.sites, DEFAULT_CARDS)
            # An operator account for the console, its password shown once (the demo's database is fresh).
            console_password = secrets.token_urlsafe(12)
            await new_operator(runtime.storage.operators, clock, DEMO_OPERATOR, console_password, Role.ADMIN)
            drivers = DriverAuth(runtime.storage.driver_auth, runtime.storage.billing.users, clock)
            await seed_demo_driver(system.billing, drivers)
            site = runtime.sites[0]
            first = site.stations[0].id if site.stations else "CP-1"
            ocpp = system.ocpp
            simulators: list[Component] = [
                FleetComponent(f"sim-{c.version.value}", c, clock, lambda: ocpp.url, ocpp.started)
                for c in demo_fleets()
            ]
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            simulators.append(
                demo_grid_operator(
                    runtime.sites[0],
                    clock,
                    system.capacity,
                    speed=DEMO_SPEED,
                    mqtt_url=settings.mqtt_url,
                    mqtt_username=settings.mqtt_username,
                    mqtt_password=password,
                )
            )

            async def _timer() -> None:
                if not await _servers_up(system, stop):
                    return
                print(f"ems demo: API on {system.api.url} (console at {system.api.url}/console)", flush=True)
                print(f"ems demo: console sign-in: {DEMO_OPERATOR} / {console_password}", flush=True)
                print(f"ems demo: OCPP on {ocpp.url}; simulated time runs {DEMO_SPEED:.0f}x", flush=True)
                public = settings.public_url or system.api.url  # the real port when it was 0
                url = evse_url(public, first, 1)
                print(f"ems demo: driver page {url} (phone {DEMO_DRIVER_PHONE}, PIN {DEMO_DRIVER_PIN})", flush=True)
                stickers = await _stickers(runtime, system.billing, site.id, public)
                sheet = await asyncio.to_thread(sticker_sheet, stickers, settings.data_dir / "stickers.pdf")
                print(f"ems demo: QR sticker sheet {sheet.resolve()}", flush=True)
                if duration_s is None:
                    print("ems demo: running until Ctrl-C", flush=True)
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(duration_s):
                        await stop.wait()
                stop.set()

            started = time.monotonic()
            async with asyncio.TaskGroup() as group:
                group.create_task(_timer(), name="demo-timer")
                group.create_task(report_capacity_changes(runtime.bus, stop), name="demo-capacity-report")
                group.create_task(
                    run_components([*system.components(), *simulators], stop, system.supervisor), name="components"
                )
            return await summarize(runtime.storage, system.api.url, time.monotonic() - started)
    finally:
        remove()


# ----------------------------------------------------------------- one-shot admin commands


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


async def _stickers(runtime: Runtime, billing: Billing, site_id: str, public_url: str) -> list[Sticker]:
    """One sticker per EVSE of the site: the site file's stations and EVSEs, then stations registered
    for the site in the database (their EVSEs from their status history; at least EVSE 1)."""
    evses: dict[str, set[int]] = {}
    site = next((s for s in runtime.sites if s.id == site_id), None)
    if site is not None:
        for spec in site.stations:
            evses.setdefault(spec.id, set()).update(e.evse_id for e in spec.evses)
    for station in await runtime.storage.stations.all():
        if station.site_id == site_id or (station.site_id is None and site is not None and len(runtime.sites) == 1):
            known = {r.evse_id for r in await runtime.storage.stations.status_history(station.id, limit=200)}
            evses.setdefault(station.id, set()).update({e for e in known if e > 0} or {1})
    if not evses:
        raise InvalidInput(f"no stations for site {site_id!r}: give a site file (--site-file) or register stations")
    texts, out = Texts("en"), []
    for station_id in sorted(evses):
        price = "\n".join(price_lines(texts, await billing.service.tariff_for(station_id, None)))
        for evse_id in sorted(evses[station_id]):
            out.append(Sticker(station_id, evse_id, evse_url(public_url, station_id, evse_id), price))
    return out


async def print_stickers(settings: Settings, site_id: str, out: Path) -> tuple[Path, int]:
    """``ems qr``: a PDF sheet of QR stickers for every EVSE of ``site_id``; returns the file and the count."""
    async with open_runtime(settings) as runtime:
        billing = build_billing(runtime.storage, clock=runtime.clock, policy=policy_from(settings, runtime.sites))
        stickers = await _stickers(runtime, billing, site_id, settings.public_base_url())
    return sticker_sheet(stickers, out), len(stickers)
