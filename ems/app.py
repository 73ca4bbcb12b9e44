"""The composition root: the only module that builds and wires every adapter.

``ems serve`` and ``ems demo`` come here. One ``asyncio.TaskGroup`` owns every long-running
component (API server, OCPP server, MQTT listener, controller, simulators); each
component's ``run(stop)`` returns when ``stop`` is set. A crash in one is seen: the
TaskGroup cancels the rest and the error reaches the command line as one clear line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ems.api.app import create_app
from ems.api.auth import hash_api_key, new_api_key
from ems.api.server import ApiServer
from ems.api.services import ApiServices
from ems.billing.components import Billing, build_billing, policy_from
from ems.billing.demo import billing_summary, seed_demo_billing
from ems.billing.listener import BillingListener
from ems.clock import Clock, SystemClock
from ems.config import Settings
from ems.controller.bus import EventBus
from ems.controller.loop import Controller
from ems.domain.access import ApiKey, Role
from ems.domain.card import Card, CardStatus
from ems.domain.events import CapacityChanged
from ems.domain.site import Site, default_site
from ems.domain.station import Station
from ems.errors import Conflict, InvalidInput
from ems.grid.capacity import CapacityPolicy
from ems.grid.mqtt import MqttGridAdapter, MqttOptions
from ems.grid.service import CapacityService
from ems.ocpp.runtime import OcppComponent, journal_path, ocpp_config
from ems.ports import Storage
from ems.security import hash_password, password_problem
from ems.sim.clock import ScaledClock
from ems.sim.demo import DEMO_SPEED, demo_fleets, demo_site
from ems.sim.fleet import DEFAULT_CARDS, FleetComponent
from ems.sim.grid_operator import GridOperatorSim, MqttGridOperatorSim, ServiceSink, demo_script
from ems.sitefile import load_site_file
from ems.storage.factory import open_database, open_storage
from ems.storage.migrate import upgrade

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


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
    ocpp: OcppComponent
    capacity: CapacityService
    controller: Controller
    mqtt: MqttGridAdapter | None
    services: ApiServices
    billing: Billing
    billing_listener: BillingListener

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
        return out


def build_api(runtime: Runtime, services: ApiServices) -> ApiServer:
    app = create_app(runtime.settings, services)
    return ApiServer(app, runtime.settings.api_host, runtime.settings.api_port)


async def build_system(runtime: Runtime) -> System:
    """Wire every adapter for ``runtime``'s settings; the controller subscribes before anything runs."""
    settings, storage, bus, clock = runtime.settings, runtime.storage, runtime.bus, runtime.clock
    secret = settings.payment_webhook_secret
    billing = build_billing(
        storage,
        clock=clock,
        policy=policy_from(settings, runtime.sites),
        webhook_secret=secret.get_secret_value().encode() if secret is not None else None,
    )
    ocpp = OcppComponent(
        ocpp_config(settings),
        storage,
        bus,
        clock,
        journal_path=journal_path(settings),
        authorizer=billing.service,  # card status, expiry and prepaid balance
    )
    billing.service.control = ocpp.control  # remote stop at the hold; pay-before-start's RemoteStart
    billing_listener = BillingListener(
        billing.service, bus, quarantine=storage.quarantine
    )  # subscribes now, before anything publishes
    # With MQTT configured a grid operator is expected, so the staleness watch starts now;
    # without, a site goes stale only after it has heard from one.
    watch_from = clock.now() if settings.mqtt_url else None
    capacity = CapacityService(
        CapacityPolicy(runtime.sites, watch_from=watch_from), bus=bus, clock=clock, store=storage.signals
    )
    controller = Controller(
        sites=runtime.sites,
        bus=bus,
        clock=clock,
        sessions=storage.sessions,
        charger_control=ocpp.control,
        capacity=capacity,
    )
    controller.subscribe()
    capacity.attach_site_load(controller)
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
    services = ApiServices(
        storage=storage,
        clock=clock,
        sites=runtime.sites,
        bus=bus,
        charger_control=ocpp.control,
        capacity=capacity,
        monitor=controller,
        billing=billing,
    )
    api = build_api(runtime, services)
    return System(api, ocpp, capacity, controller, mqtt, services, billing, billing_listener)


def build_grid_operator_sim(runtime: Runtime, capacity: CapacityService, speed: float = 1.0) -> Component:
    """``ems demo``'s grid operator: over the broker when EMS_MQTT_URL is set, else in-process.

    ``speed``: clock seconds per real second, so the script lands at the same real moments.
    """
    site = runtime.sites[0]
    settings = runtime.settings
    script = demo_script(site, speed)

    def report(line: str) -> None:
        print(f"ems demo: {line}", flush=True)

    if settings.mqtt_url:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return MqttGridOperatorSim(
            settings.mqtt_url,
            site,
            runtime.clock,
            username=settings.mqtt_username,
            password=password,
            report=report,
            script=script,
        )
    return GridOperatorSim(ServiceSink(capacity), site, runtime.clock, script, report=report)


async def report_capacity_changes(runtime: Runtime, stop: asyncio.Event) -> None:
    """Print every change of the site capacity in force (``ems demo``)."""
    changes = runtime.bus.subscribe(CapacityChanged, name="demo-capacity-report", maxsize=100)
    try:
        while not stop.is_set():
            getting = asyncio.ensure_future(changes.get())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not getting.done():
                getting.cancel()
                break
            event = getting.result()
            if event.circuit_id is None:
                limit = "no limit" if event.capacity_w is None else f"{event.capacity_w / 1000:.1f} kW"
                source = event.source.value if event.source else "none"
                print(f"ems demo: capacity of {event.site_id} now {limit} ({event.reason.value}, from {source})")
    finally:
        changes.close()


async def run_components(components: list[Component], stop: asyncio.Event) -> None:
    """Run every component until ``stop`` is set or one of them fails."""
    async with asyncio.TaskGroup() as group:
        for component in components:
            group.create_task(_supervised(component, stop), name=component.name)


async def _supervised(component: Component, stop: asyncio.Event) -> None:
    try:
        await component.run(stop)
    except BaseException:
        stop.set()
        raise
    if not stop.is_set():
        log.warning("component %s stopped on its own; shutting down", component.name)
        stop.set()


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``stop``; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    try:
        async with open_runtime(settings) as runtime:
            system = await build_system(runtime)
            async with asyncio.TaskGroup() as group:
                group.create_task(_announce(system, runtime, stop), name="announce")
                group.create_task(run_components(system.components(), stop), name="components")
    finally:
        remove()


async def _servers_up(system: System, stop: asyncio.Event) -> bool:
    """True once the API and the OCPP server both listen; False if ``stop`` came first."""
    return await _first(system.api.started, stop) and await _first(system.ocpp.started, stop)


async def _first(ready: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for ``ready`` or ``stop``; True if ``ready`` is set."""
    waiting = asyncio.create_task(ready.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    stopping.cancel()
    return ready.is_set()


async def _announce(system: System, runtime: Runtime, stop: asyncio.Event) -> None:
    api = system.api
    if not await _servers_up(system, stop):
        return
    backend = runtime.storage.backend
    print(f"ems: API on {api.url} (OpenAPI docs at {api.url}/docs, dashboard at {api.url}/dashboard)", flush=True)
    print(f"ems: OCPP on {system.ocpp.url}/<station-id> (ocpp1.6, ocpp2.0.1), storage: {backend}", flush=True)
    if system.mqtt is not None:
        print(f"ems: grid signals over MQTT at {system.mqtt.options.host}:{system.mqtt.options.port}", flush=True)
    if runtime.settings.admin_api_key is None:
        print("ems: EMS_ADMIN_API_KEY is not set: create a key with `ems apikey create` to use /api/v1", flush=True)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    duration_s: float
    stations: int
    stations_connected: int
    """Stations that connected during the run (the simulated ones disconnect as the demo ends)."""
    sessions: int
    sessions_completed: int
    energy_wh: float
    samples: int
    api_url: str
    billing: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [
            f"demo ran {self.duration_s:.0f} s; API was at {self.api_url}",
            f"stations: {self.stations} registered, {self.stations_connected} connected during the run",
            f"sessions: {self.sessions} ({self.sessions_completed} completed), "
            f"energy delivered: {self.energy_wh / 1000:.2f} kWh, meter samples stored: {self.samples}",
            *self.billing,
        ]


async def summarize(runtime: Runtime, api: ApiServer, duration_s: float) -> DemoSummary:
    storage = runtime.storage
    stations = await storage.stations.all()
    sessions = await storage.sessions.query(limit=100_000)
    samples = 0
    for s in sessions:
        samples += len(await storage.samples.for_session(s.id))
    return DemoSummary(
        duration_s=duration_s,
        stations=len(stations),
        stations_connected=sum(1 for s in stations if s.last_seen_at is not None),
        sessions=len(sessions),
        sessions_completed=sum(1 for s in sessions if s.stopped_at is not None),
        energy_wh=sum(s.energy_wh for s in sessions),
        samples=samples,
        api_url=api.url,
        billing=tuple(await billing_summary(storage, DEFAULT_CARDS)),
    )


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
            ocpp = system.ocpp
            simulators: list[Component] = [
                FleetComponent(f"sim-{c.version.value}", c, clock, lambda: ocpp.url, ocpp.started)
                for c in demo_fleets()
            ]
            simulators.append(build_grid_operator_sim(runtime, system.capacity, DEMO_SPEED))

            async def _timer() -> None:
                if not await _servers_up(system, stop):
                    return
                print(f"ems demo: API on {system.api.url} (dashboard at {system.api.url}/dashboard)", flush=True)
                print(f"ems demo: OCPP on {ocpp.url}; simulated time runs {DEMO_SPEED:.0f}x", flush=True)
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
                group.create_task(report_capacity_changes(runtime, stop), name="demo-capacity-report")
                group.create_task(run_components([*system.components(), *simulators], stop), name="components")
            return await summarize(runtime, system.api, time.monotonic() - started)
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


async def add_station(settings: Settings, station_id: str, password: str | None) -> Station:
    problems = [] if password is None else [p for p in [password_problem(password)] if p]
    if problems:
        raise InvalidInput(f"cannot register station {station_id}", problems)
    async with open_runtime(settings) as runtime:
        station = Station(
            id=station_id,
            password_hash=hash_password(password) if password else None,
            registered_at=runtime.clock.now(),
        )
        try:
            await runtime.storage.stations.add(station)
        except Conflict as exc:
            raise Conflict(f"station {station_id!r} already exists") from exc
        return station


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
        try:
            await runtime.storage.cards.add(card)
        except Conflict as exc:
            raise Conflict(f"card {uid!r} already exists") from exc
        return card


async def create_api_key(settings: Settings, name: str, role: str) -> tuple[str, ApiKey]:
    async with open_runtime(settings) as runtime:
        key = new_api_key()
        record = ApiKey(
            id=secrets.token_hex(8),
            name=name,
            role=Role(role),
            key_hash=hash_api_key(key),
            created_at=runtime.clock.now(),
        )
        await runtime.storage.api_keys.add(record)
        return key, record
