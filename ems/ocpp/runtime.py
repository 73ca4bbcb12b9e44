"""The OCPP side, built once by the composition root: server, journal, applier, command control.

::

    control = OcppChargerControl(LinkRegistry(), timeout_s=...)    # exists before anything runs
    billing = build_billing(storage, ..., control=control)           # billing can stop sessions
    ocpp = OcppRuntime(config, storage, bus, clock, journal_path=..., authorizer=billing.service, control=control)
    group.create_task(ocpp.run(stop))  # opens the journal, serves until ``stop``; then drains and closes

``control`` and ``registry`` exist from construction (so billing, the controller and the API can be
given them), the parts that need the event loop (journal, service, applier, server) from
``await ocpp.prepare()``, which ``run`` calls if nobody did. Tests that want the parts before running
use ``runtime = await OcppRuntime.open(...)`` (construct + prepare).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from ems.bus import EventBus
from ems.clock import Clock
from ems.config import Settings
from ems.ocpp.applier import Applier
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.journal import Journal
from ems.ocpp.server import OcppServer, OcppServerConfig
from ems.ocpp.service import CardAuthorizer, OcppService
from ems.ports.control import Authorizer
from ems.ports.stores import Storage
from ems.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
"""At shutdown, how long the applier may take to store what is journaled; the rest waits in the journal."""


def ocpp_config(settings: Settings, *, auto_register: bool | None = None) -> OcppServerConfig:
    return OcppServerConfig(
        host=settings.ocpp_host,
        port=settings.ocpp_port,
        auto_register=settings.ocpp_auto_register if auto_register is None else auto_register,
        tls_cert=settings.ocpp_tls_cert,
        tls_key=settings.ocpp_tls_key,
        audit_frames=settings.ocpp_audit_frames,
    )


def journal_path(settings: Settings) -> Path:
    return settings.data_dir / "ocpp-journal.db"


class _Parts:
    """What ``prepare`` builds: the parts that need a running event loop."""

    def __init__(self, journal: Journal, service: OcppService, applier: Applier, server: OcppServer) -> None:
        self.journal = journal
        self.service = service
        self.applier = applier
        self.server = server


class OcppRuntime:
    """The one OCPP builder and component (``name``, ``run(stop)``, ``started``, ``url``)."""

    name = "ocpp"

    def __init__(
        self,
        config: OcppServerConfig,
        storage: Storage,
        bus: EventBus,
        clock: Clock,
        *,
        journal_path: Path | None,
        authorizer: Authorizer | None = None,
        control: OcppChargerControl | None = None,
    ) -> None:
        """``journal_path`` ``None``: an in-memory journal (tests only: not durable). ``authorizer``
        ``None``: cards only (``CardAuthorizer``). ``control`` ``None``: a new one over a new registry."""
        self.config = config
        self._storage = storage
        self._bus = bus
        self._clock = clock
        self._journal_path = journal_path
        self._authorizer = authorizer
        self.control = (
            control if control is not None else OcppChargerControl(LinkRegistry(), timeout_s=config.command_timeout_s)
        )
        self.registry = self.control.registry
        self.started = asyncio.Event()
        """Set once the server listens; ``url`` is then the bound address."""
        self._parts: _Parts | None = None

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
        control: OcppChargerControl | None = None,
    ) -> OcppRuntime:
        """Construct and ``prepare``: every part exists when this returns (the server listens once ``run``)."""
        runtime = cls(config, storage, bus, clock, journal_path=journal_path, authorizer=authorizer, control=control)
        await runtime.prepare()
        return runtime

    async def prepare(self) -> None:
        """Open the journal and build the service, applier and server (once; ``run`` calls it)."""
        if self._parts is not None:
            return
        journal = await Journal.open(self._journal_path)
        authorizer = self._authorizer or CardAuthorizer(self._storage.cards, self._clock)
        service = OcppService(self._storage, self._bus, self._clock, journal, authorizer)
        self._parts = _Parts(
            journal=journal,
            service=service,
            applier=Applier(journal, self._storage, self._bus, self._clock),
            server=OcppServer(self.config, service, self.registry, self._clock, journal),
        )

    def _opened(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("the OCPP runtime is not prepared yet (await prepare() or run())")
        return self._parts

    @property
    def journal(self) -> Journal:
        return self._opened().journal

    @property
    def service(self) -> OcppService:
        return self._opened().service

    @property
    def applier(self) -> Applier:
        return self._opened().applier

    @property
    def server(self) -> OcppServer:
        return self._opened().server

    @property
    def url(self) -> str:
        if self._parts is None:
            raise RuntimeError("the OCPP server is not running")
        return self._parts.server.url

    async def run(self, stop: asyncio.Event, *, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Serve until ``stop``; then stop accepting, let the applier catch up, close the journal."""
        await self.prepare()
        parts = self._opened()
        applier = asyncio.create_task(parts.applier.run(), name="ocpp-applier")
        announce = asyncio.create_task(self._announce(parts.server), name="ocpp-started")
        try:
            await parts.server.run(stop)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout_s):
                    await self.drained()
        finally:
            await cancel_and_wait(announce)
            await cancel_and_wait(applier)
            await parts.journal.close()

    async def _announce(self, server: OcppServer) -> None:
        await server.started.wait()
        self.started.set()

    async def drained(self) -> None:
        """Until everything journaled so far is in storage."""
        parts = self._opened()
        while parts.journal.backlog() or parts.journal.committed > parts.applier.applied:
            parts.applier.idle.clear()
            await parts.applier.idle.wait()
