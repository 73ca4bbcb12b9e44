"""The composition root: the only package that builds and wires every adapter.

This module builds the system ``ems serve`` runs (and ``ems.app.demo`` runs with simulated
stations); ``ems.app.commands`` holds the CLI's one-shot admin commands. It only builds: every
object gets what it needs through its constructor, in an order that needs no patching
afterwards (see ``build_system``). Running is ``ems.supervisor``: a failing component is
logged with its traceback, shown in ``/health`` and ``/metrics`` and restarted where safe, never
taking the process down (a ``ConfigError`` at start does); the use cases are ``ems.services``;
the demo's scenario is ``ems.sim.demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

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
from ems.domain.events import CapacityChanged
from ems.domain.site import Site, default_site
from ems.domain.tariff import Tariff
from ems.grid.capacity import CapacityPolicy
from ems.grid.mqtt import MqttGridAdapter, MqttOptions
from ems.health import SystemHealth
from ems.metrics import SystemCollector
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.runtime import OcppRuntime, journal_path, ocpp_config
from ems.ports.stores import Storage
from ems.services.billing import BillingPolicy
from ems.services.billing_listener import BillingListener
from ems.services.billing_setup import Billing, build_billing
from ems.services.capacity import CapacityService
from ems.services.drivers import DriverAuth
from ems.services.plan_recorder import PlanRecorder
from ems.sitefile import load_site_file
from ems.storage.factory import SqlStorage, open_storage
from ems.supervisor import Component, Supervisor, first, install_signal_handlers, run_components
from ems.web.app import web_router
from ems.web.payments import TestPaymentProvider
from ems.web.services import WebServices, WebSettings

log = logging.getLogger(__name__)


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
    recorder = None
    if isinstance(storage, SqlStorage):  # the planned load and capacity in force, for the load curve
        sites = tuple(site.id for site in runtime.sites)
        recorder = PlanRecorder(sites, controller, capacity, storage.rollups, clock)
    api = build_api(runtime, services)
    return System(api, ocpp, capacity, controller, mqtt, services, billing, billing_listener, supervisor, recorder)


def station_tariffs(billing: Billing) -> Callable[[str], Awaitable[Tariff]]:
    """A station's tariff for drivers without a group (what a QR sticker shows)."""

    async def tariff_for(station_id: str) -> Tariff:
        return await billing.service.tariff_for(station_id, None)

    return tariff_for


def settle_heap() -> None:
    """Once the process has started (modules imported, the system built): collect the start-up
    garbage, then move every object alive now out of the cyclic collector's sight (``gc.freeze``).

    Without it, every full collection walks the start-up heap again (~190,000 objects: FastAPI,
    pydantic, psycopg, numpy, highspy, ems), a pause of ~90 ms on these machines that lands in
    whatever request allocated last: the analytics reports' p95 was those pauses
    (docs/benchmarks/analytics.md). Called by the entry points (``serve``, ``demo``), not by
    ``build_system``, which tests call many times in one process."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    try:
        async with open_runtime(settings) as runtime:
            system = await build_system(runtime)
            settle_heap()
            async with asyncio.TaskGroup() as group:
                group.create_task(_announce(system, runtime, stop), name="announce")
                group.create_task(run_components(system.components(), stop, system.supervisor), name="components")
    finally:
        remove()


async def servers_up(system: System, stop: asyncio.Event) -> bool:
    """True once the API and the OCPP server both listen; False if ``stop`` came first."""
    return await first(system.api.started, stop) and await first(system.ocpp.started, stop)


async def _announce(system: System, runtime: Runtime, stop: asyncio.Event) -> None:
    api = system.api
    if not await servers_up(system, stop):
        return
    backend = runtime.storage.backend
    print(f"ems: API on {api.url} (OpenAPI docs at {api.url}/docs, console at {api.url}/console)", flush=True)
    print(f"ems: OCPP on {system.ocpp.url}/<station-id> (ocpp1.6, ocpp2.0.1), storage: {backend}", flush=True)
    if system.mqtt is not None:
        print(f"ems: grid signals over MQTT at {system.mqtt.options.host}:{system.mqtt.options.port}", flush=True)
    if runtime.settings.admin_api_key is None:
        print("ems: EMS_ADMIN_API_KEY is not set: create a key with `ems apikey create` to use /api/v1", flush=True)
