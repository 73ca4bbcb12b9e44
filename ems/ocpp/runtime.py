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
from ems.clock import Clock, SystemClock
from ems.config import Settings
from ems.ocpp.applier import Applier
from ems.ocpp.control import LinkRegistry, OcppChargerControl
from ems.ocpp.journal import Journal
from ems.ocpp.server import OcppServer, OcppServerConfig
from ems.ocpp.service import CardAuthorizer, OcppService
from ems.ports.control import Authorizer
from ems.ports.stores import Storage
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
    restartable = True
    """Safe: every answered message is in the durable journal, which a restart reopens and
    replays (a failed run's parts are dropped and built again); stations reconnect to the new
    server (sessions belong to station ids)."""

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
        supervisor: Supervisor | None = None,
    ) -> None:
        """``journal_path`` ``None``: an in-memory journal (tests only: not durable). ``authorizer``
        ``None``: cards only (``CardAuthorizer``). ``control`` ``None``: a new one over a new registry.
        ``supervisor``: the journal applier runs under it (``ocpp-applier``); ``None``: one of its own."""
        self.config = config
        self.supervisor = supervisor or Supervisor(SystemClock())
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
        supervisor: Supervisor | None = None,
    ) -> OcppRuntime:
        """Construct and ``prepare``: every part exists when this returns (the server listens once ``run``)."""
        runtime = cls(
            config,
            storage,
            bus,
            clock,
            journal_path=journal_path,
            authorizer=authorizer,
            control=control,
            supervisor=supervisor,
        )
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

    @property
    def prepared(self) -> bool:
        """True once the parts exist (``journal``, ``service``, ``applier``, ``server`` may be read)."""
        return self._parts is not None

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
        """Serve until ``stop``; then stop accepting, let the applier catch up, close the journal.

        The applier runs under the supervisor (``ocpp-applier``, restartable: a restart first
        re-applies the batch a failure interrupted; nothing is acked before it is stored). A
        journal whose writer died ends this run with the writer's error (the component fails
        and is restarted with a new journal, server and applier)."""
        await self.prepare()
        parts = self._opened()

        async def apply_until_cancelled(_: asyncio.Event) -> None:
            await parts.applier.run()

        applier_stop = asyncio.Event()  # never set: the applier is cancelled after the drain
        applier = asyncio.create_task(
            self.supervisor.run("ocpp-applier", apply_until_cancelled, applier_stop, restartable=True),
            name="ocpp-applier",
        )
        announce = asyncio.create_task(self._announce(parts.server), name="ocpp-started")
        serving = asyncio.create_task(parts.server.run(stop), name="ocpp-server")
        try:
            await asyncio.wait({serving, parts.journal.writer}, return_when=asyncio.FIRST_COMPLETED)
            if not serving.done():
                await cancel_and_wait(serving)
                parts.journal.writer.result()  # raises the writer's error
                raise RuntimeError("the OCPP journal writer stopped")
            await serving
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout_s):
                    await self.drained()
        finally:
            await cancel_and_wait(announce)
            await cancel_and_wait(applier)
            try:
                await parts.journal.close()
            finally:
                if not stop.is_set():
                    self._parts = None  # a failed run: the restart builds the parts again

    async def _announce(self, server: OcppServer) -> None:
        await server.started.wait()
        self.started.set()

    async def drained(self) -> None:
        """Until everything journaled so far is in storage."""
        parts = self._opened()
        while parts.journal.backlog() or parts.journal.committed > parts.applier.applied:
            parts.applier.idle.clear()
            await parts.applier.idle.wait()
