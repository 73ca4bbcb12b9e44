"""Running the API under uvicorn inside the composition root's TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from ems.errors import ConfigError

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The composition root owns SIGINT/SIGTERM for every component; uvicorn must not take them.
        yield


class ApiServer:
    """``run(stop)`` serves until ``stop`` is set, then shuts down gracefully."""

    name = "api"

    def __init__(self, app: FastAPI, host: str, port: int, log_level: str = "warning") -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", access_log=False)
        self._server = _Server(config)
        self.started = asyncio.Event()
        self.port = port
        self.host = host

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self._server.serve(), name="uvicorn")
        try:
            while not self._server.started:
                if serving.done():
                    # uvicorn logs a bind error and calls sys.exit(1): turn that into one clear error.
                    with contextlib.suppress(SystemExit):
                        await serving
                    raise ConfigError(f"cannot serve the API on {self.host}:{self.port} (address in use?)")
                await asyncio.sleep(0.01)
            sockets = [s for srv in self._server.servers for s in srv.sockets]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
            self.started.set()
            await stop.wait()
        finally:
            self._server.should_exit = True
            await serving

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
