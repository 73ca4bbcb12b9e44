"""Everything the OCPP side needs, built and run together: what the composition root wires in.

::

    ocpp = OcppComponent(ocpp_config(settings), storage, bus, clock, journal_path=journal_path(settings))
    services = ApiServices(..., charger_control=ocpp.control)  # the API's command endpoint
    group.create_task(ocpp.run(stop))  # server + applier until ``stop``; then drains and closes

``OcppRuntime`` is the same with everything built up front (tests use it directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ems.clock import Clock, SystemClock
from ems.config import Settings
from ems.controller.bus import EventBus
from ems.ocpp.applier import Applier
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.journal import Journal
from ems.ocpp.server import OcppServer, OcppServerConfig
from ems.ocpp.service import CardAuthorizer, OcppService
from ems.ports import Authorizer, Storage
from ems.supervisor import Supervisor
from ems.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
"""At shutdown, how long the applier may take to store what is journaled; the rest waits in the journal."""


def ocpp_config(settings: Settings, *, auto_register: bool | None = None) -> OcppServerConfig:
    return OcppServerConfig(
        host=settings.ocpp_host,
        port=settings.ocpp_port,
        auto_register=settings.ocpp_auto_register if auto_register is None else auto_register,
        require_password=settings.ocpp_require_password,
        throttle=settings.throttle_settings(),
        tls_cert=settings.ocpp_tls_cert,
        tls_key=settings.ocpp_tls_key,
        audit_frames=settings.ocpp_audit_frames,
    )


def journal_path(settings: Settings) -> Path:
    return settings.data_dir / "ocpp-journal.db"


@dataclass
class OcppRuntime:
    journal: Journal
    service: OcppService
    applier: Applier
    registry: LinkRegistry
    control: OcppChargerControl
    server: OcppServer

    @classmethod
    async def open(
        cls,
        config: OcppServerConfig,
        storage: Storage,
        bus: EventBus,
        clock: Clock,
        *,
        journal_path: Path | None,
        authorizer: Authorizer | None = None,
        registry: LinkRegistry | None = None,
    ) -> OcppRuntime:
        """``journal_path`` ``None``: an in-memory journal (tests only: not durable)."""
        journal = await Journal.open(journal_path)
        service = OcppService(storage, bus, clock, journal, authorizer or CardAuthorizer(storage.cards, clock))
        # Not `registry or ...`: an empty registry has len 0 and is falsy, and the caller's must be used.
        registry = registry if registry is not None else LinkRegistry()
        return cls(
            journal=journal,
            service=service,
            applier=Applier(journal, storage, bus, clock),
            registry=registry,
            control=OcppChargerControl(registry, timeout_s=config.command_timeout_s),
            server=OcppServer(config, service, registry, clock, journal),
        )

    async def run(
        self,
        stop: asyncio.Event,
        *,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
        supervisor: Supervisor | None = None,
    ) -> None:
        """Serve until ``stop``; then stop accepting, let the applier catch up, close the journal.

        The applier runs under ``supervisor`` (``ocpp-applier``, restartable: a restart first
        re-applies the batch a failure interrupted, nothing is acked before it is stored). A
        journal whose writer died ends this run with the writer's error (the component fails).
        """
        supervisor = supervisor or Supervisor(SystemClock())

        async def apply_until_cancelled(_: asyncio.Event) -> None:
            await self.applier.run()

        applier_stop = asyncio.Event()  # never set: the applier is cancelled after the drain
        applier = asyncio.create_task(
            supervisor.run("ocpp-applier", apply_until_cancelled, applier_stop, restartable=True),
            name="ocpp-applier",
        )
        serving = asyncio.create_task(self.server.run(stop), name="ocpp-server")
        try:
            await asyncio.wait({serving, self.journal.writer}, return_when=asyncio.FIRST_COMPLETED)
            if not serving.done():
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                self.journal.writer.result()  # raises the writer's error
                raise RuntimeError("the OCPP journal writer stopped")
            await serving
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout_s):
                    await self.drained()
        finally:
            await cancel_and_wait(applier)
            await self.journal.close()

    async def drained(self) -> None:
        """Until everything journaled so far is in storage."""
        while self.journal.backlog() or self.journal.committed > self.applier.applied:
            self.applier.idle.clear()
            await self.applier.idle.wait()


class OcppComponent:
    """The OCPP side as a composition-root component: ``control`` exists before ``run`` starts."""

    name = "ocpp"
    restartable = True
    """Safe: every answered message is in the durable journal, which a restart reopens and
    replays; stations reconnect to the new server (sessions belong to station ids)."""

    def __init__(
        self,
        config: OcppServerConfig,
        storage: Storage,
        bus: EventBus,
        clock: Clock,
        *,
        journal_path: Path | None,
        authorizer: Authorizer | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self._storage = storage
        self._bus = bus
        self._clock = clock
        self._journal_path = journal_path
        self._authorizer = authorizer
        self.registry = LinkRegistry()
        self.control = OcppChargerControl(self.registry, timeout_s=config.command_timeout_s)
        self.started = asyncio.Event()
        """Set once the server listens; ``url`` is then the bound address."""
        self.runtime: OcppRuntime | None = None

    @property
    def url(self) -> str:
        if self.runtime is None:
            raise RuntimeError("the OCPP server is not running")
        return self.runtime.server.url

    async def run(self, stop: asyncio.Event) -> None:
        runtime = await OcppRuntime.open(
            self.config,
            self._storage,
            self._bus,
            self._clock,
            journal_path=self._journal_path,
            authorizer=self._authorizer,
            registry=self.registry,
        )
        self.runtime = runtime

        async def announce() -> None:
            await runtime.server.started.wait()
            self.started.set()

        async with asyncio.TaskGroup() as group:
            group.create_task(runtime.run(stop, supervisor=self.supervisor), name="ocpp-runtime")
            group.create_task(announce(), name="ocpp-started")
