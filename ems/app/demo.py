"""``ems demo``: the whole system of ``ems serve`` plus simulated stations and a grid operator,
on an embedded database and a sped-up clock. The scenario (fleets, grid operator, demo billing)
is ``ems.sim.demo``; this module only wires it to the running system and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

from ems.app import build_system, open_runtime, servers_up, settle_heap, station_tariffs
from ems.clock import SystemClock
from ems.config import Settings
from ems.domain.access import Role
from ems.domain.card import Card
from ems.errors import Conflict
from ems.services.drivers import DriverAuth
from ems.services.operators import create_operator as new_operator
from ems.sim.clock import ScaledClock
from ems.sim.demo import (
    DEMO_SPEED,
    DEMO_STATIONS_PER_VERSION,
    DemoSummary,
    demo_fleets,
    demo_grid_operator,
    demo_site,
    report_capacity_changes,
    summarize,
)
from ems.sim.demo_billing import DEMO_DRIVER_PHONE, DEMO_DRIVER_PIN, seed_demo_billing, seed_demo_driver
from ems.sim.fleet import DEFAULT_CARDS, FleetComponent
from ems.supervisor import Component, install_signal_handlers, run_components
from ems.web.qr import evse_url, site_stickers, sticker_sheet

DEMO_OPERATOR = "demo@ems.example"
"""The console account ``ems demo`` creates (an admin; its password is printed at start)."""


async def demo(
    settings: Settings, duration_s: float | None, stations_per_version: int = DEMO_STATIONS_PER_VERSION
) -> DemoSummary:
    """``ems serve`` plus simulated stations of both OCPP versions on an embedded database
    (``stations_per_version`` of each, on a site sized for them: ``ems.sim.demo.demo_site``).

    The whole process runs on one sped-up clock (``DEMO_SPEED``), so the stations, the
    controller and the grid signals agree on time: a minute of demo is an hour of car park.
    """
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    clock = ScaledClock(SystemClock(), DEMO_SPEED)
    try:
        async with open_runtime(settings, clock, default=(demo_site(stations_per_version),)) as runtime:
            for uid in DEFAULT_CARDS:
                with contextlib.suppress(Conflict):
                    await runtime.storage.cards.add(Card(uid=uid, label="demo driver", created_at=clock.now()))
            system = await build_system(runtime)
            # Prepaid accounts behind the demo cards and a tariff per site: sessions priced, balances moving.
            scale = max(1, stations_per_version // DEMO_STATIONS_PER_VERSION)
            await seed_demo_billing(system.billing, runtime.storage, runtime.sites, DEFAULT_CARDS, scale=scale)
            # An operator account for the console, its password shown once (the demo's database is fresh).
            console_password = secrets.token_urlsafe(12)
            await new_operator(runtime.storage.operators, clock, DEMO_OPERATOR, console_password, Role.ADMIN)
            drivers = DriverAuth(runtime.storage.driver_auth, runtime.storage.billing.users, clock)
            await seed_demo_driver(system.billing, drivers)
            settle_heap()
            site = runtime.sites[0]
            first = site.stations[0].id if site.stations else "CP-1"
            ocpp = system.ocpp
            simulators: list[Component] = [
                FleetComponent(f"sim-{c.version.value}", c, clock, lambda: ocpp.url, ocpp.started)
                for c in demo_fleets(stations_per_version)
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
                if not await servers_up(system, stop):
                    return
                print(f"ems demo: API on {system.api.url} (console at {system.api.url}/console)", flush=True)
                print(f"ems demo: console sign-in: {DEMO_OPERATOR} / {console_password}", flush=True)
                print(f"ems demo: OCPP on {ocpp.url}; simulated time runs {DEMO_SPEED:.0f}x", flush=True)
                public = settings.public_url or system.api.url  # the real port when it was 0
                url = evse_url(public, first, 1)
                print(f"ems demo: driver page {url} (phone {DEMO_DRIVER_PHONE}, PIN {DEMO_DRIVER_PIN})", flush=True)
                stickers = await site_stickers(
                    runtime.sites, site.id, runtime.storage.stations, station_tariffs(system.billing), public
                )
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
