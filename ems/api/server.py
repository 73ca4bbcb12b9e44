"""Running the API under uvicorn inside the composition root's TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from ems.errors import ConfigError
from ems.tasks import wait_any

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The composition root owns SIGINT/SIGTERM for every component; uvicorn must not take them.
        yield


class ApiServer:
    """``run(stop)`` serves until ``stop`` is set, then shuts down gracefully."""

    name = "api"
    restartable = True
    """Safe: stateless; a restart builds a new uvicorn server on the same app and port."""

    def __init__(self, app: FastAPI, host: str, port: int, log_level: str = "warning") -> None:
        self._app = app
        self._log_level = log_level
        self.started = asyncio.Event()
        self.port = port
        self.host = host
        self.runs = 0

    def _new_server(self) -> _Server:
        # A uvicorn server runs once; a restart needs a new one (on the port bound the first time).
        config = uvicorn.Config(
            self._app, host=self.host, port=self.port, log_level=self._log_level, lifespan="off", access_log=False
        )
        return _Server(config)

    async def run(self, stop: asyncio.Event) -> None:
        server = self._new_server()
        self.runs += 1
        serving = asyncio.create_task(server.serve(), name="uvicorn")
        try:
            while not server.started:
                if serving.done():
                    # uvicorn logs a bind error and calls sys.exit(1): turn that into one clear error.
                    with contextlib.suppress(SystemExit):
                        await serving
                    message = f"cannot serve the API on {self.host}:{self.port} (address in use?)"
                    raise ConfigError(message) if self.runs == 1 else RuntimeError(message)
                await asyncio.sleep(0.01)
            sockets = [s for srv in server.servers for s in srv.sockets]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
            self.started.set()
            await wait_any([serving], stop)
            if serving.done() and not stop.is_set():
                with contextlib.suppress(SystemExit):
                    serving.result()  # raises what uvicorn failed with
                raise RuntimeError("the API server stopped on its own")
        finally:
            server.should_exit = True
            with contextlib.suppress(SystemExit):
                await serving

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
