"""The OCPP server: WebSocket endpoint ``ws://HOST:PORT/<station-id>`` for OCPP 1.6J and 2.0.1.

Handshake (``process_request``), in order; each refusal is an HTTP answer, before any
WebSocket exists:

1. the station id is the last path segment, 1-48 characters of OCPP's identifier set,
   else ``400``;
2. the ``Sec-WebSocket-Protocol`` offer must include ``ocpp1.6`` or ``ocpp2.0.1`` (first
   supported one in the station's order wins), else ``400``;
3. an unknown station id is refused with ``404``, unless ``auto_register`` is on, which
   registers it (no password) on the spot;
4. security profile 1: a station with a password must send HTTP Basic with username = its
   id; the password is checked against the stored scrypt hash in constant time
   (``ems.security``), off the event loop. Missing or wrong -> ``401``. A station without
   a password is let in without one, unless ``require_password`` is set. Profile 2 is
   the same over TLS (``tls_cert`` + ``tls_key``);
5. takeover policy, for a second connection claiming a station id that is connected:
   the existing connection is pinged. If it answers within ``takeover_probe_s`` (5 s) it is
   alive and the newcomer is refused with ``409`` (no silent hijack, also not by a
   misconfigured twin sharing an id). If it does not answer, it is a half-open
   connection (the station lost its link and is reconnecting): it is aborted and the new
   connection takes over. Sessions belong to the station id, not to a connection, so a
   transaction carries on across the switch. Both cases are logged at WARNING.

Keepalive: WebSocket pings every ``ping_interval_s`` (20 s), a connection that misses a
pong for ``ping_timeout_s`` (20 s) is closed. Frames above ``max_frame_bytes`` (256 KiB)
close the connection (1009). At most ``max_queue`` (16) received frames wait per
connection; beyond that the TCP connection is back-pressured. No compression: an idle
connection costs ~14 KiB instead of ~57 KiB with permessage-deflate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ems.clock import Clock
from ems.domain.station import OcppVersion, Station
from ems.errors import Conflict, NotFound, StorageError
from ems.ocpp.control import LinkRegistry
from ems.ocpp.journal import Journal
from ems.ocpp.link import StationLink
from ems.ocpp.service import OcppService
from ems.ocpp.v16 import V16Link
from ems.ocpp.v201 import V201Link
from ems.security import verify_password

log = logging.getLogger(__name__)

STATION_ID = re.compile(r"^[A-Za-z0-9*\-_=:+|@.]{1,48}$")
"""OCPP 2.0.1 identifierString, at most 48 characters (CiString48)."""
SUBPROTOCOLS = {v.value: v for v in OcppVersion}
LINKS: dict[OcppVersion, type[StationLink]] = {OcppVersion.V16: V16Link, OcppVersion.V201: V201Link}


@dataclass(frozen=True, slots=True)
class OcppServerConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    auto_register: bool = False
    require_password: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    max_frame_bytes: int = 256 * 1024
    max_queue: int = 16
    takeover_probe_s: float = 5.0
    command_timeout_s: float = 30.0
    audit_frames: bool = False

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security profile 2 requires TLS 1.2 or higher
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


def _refuse(status: HTTPStatus, text: str, *, basic: bool = False) -> Response:
    response = Response(status.value, status.phrase, websockets.Headers(), f"{text}\n".encode())
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Content-Length"] = str(len(response.body))
    if basic:
        response.headers["WWW-Authenticate"] = 'Basic realm="ems OCPP", charset="UTF-8"'
    return response


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class OcppServer:
    """``run(stop)`` serves until ``stop`` is set. ``port`` is the bound port once ``started`` is set."""

    name = "ocpp"

    def __init__(
        self, config: OcppServerConfig, service: OcppService, registry: LinkRegistry, clock: Clock, journal: Journal
    ) -> None:
        self.config = config
        self.service = service
        self.registry = registry
        self.clock = clock
        self.journal = journal
        self.started = asyncio.Event()
        self.port = config.port
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, tuple[str, OcppVersion]] = (
            weakref.WeakKeyDictionary()
        )
        self.refused: dict[int, int] = {}
        """Handshakes refused, by HTTP status (for tests and metrics)."""

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.ssl_context() else "ws"
        return f"{scheme}://{self.config.host}:{self.port}"

    async def run(self, stop: asyncio.Event) -> None:
        server = await self.start()
        try:
            await stop.wait()
        finally:
            server.close()
            await server.wait_closed()

    async def start(self) -> Server:
        """Bind and serve in the background; close the returned server to stop."""
        server = await serve(
            self._serve,
            self.config.host,
            self.config.port,
            subprotocols=[websockets.Subprotocol(p) for p in SUBPROTOCOLS],
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            compression=None,
            ping_interval=self.config.ping_interval_s,
            ping_timeout=self.config.ping_timeout_s,
            max_size=self.config.max_frame_bytes,
            max_queue=self.config.max_queue,
            ssl=self.config.ssl_context(),
            server_header="ems",
        )
        self.port = next(iter(server.sockets)).getsockname()[1]
        self.started.set()
        log.info("OCPP server listening on %s", self.url)
        return server

    # ------------------------------------------------------------------ handshake

    def _offered(self, request: Request) -> OcppVersion | None:
        for header in request.headers.get_all("Sec-WebSocket-Protocol"):
            for token in header.split(","):
                version = SUBPROTOCOLS.get(token.strip())
                if version is not None:
                    return version
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[websockets.Subprotocol]
    ) -> websockets.Subprotocol | None:
        admitted = self._admitted.get(connection)
        return None if admitted is None else websockets.Subprotocol(admitted[1].value)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        response = await self._admit(connection, request)
        if response is not None:
            self.refused[response.status_code] = self.refused.get(response.status_code, 0) + 1
        return response

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = unquote(urlsplit(request.path).path.rstrip("/").rsplit("/", 1)[-1])
        if not STATION_ID.match(station_id):
            return _refuse(HTTPStatus.BAD_REQUEST, "the path must end in a station id (1-48 of A-Z a-z 0-9 *-_=:+|@.)")
        version = self._offered(request)
        if version is None:
            return _refuse(HTTPStatus.BAD_REQUEST, "offer subprotocol ocpp1.6 or ocpp2.0.1")
        try:
            station = await self._station(station_id, version)
        except (StorageError, NotFound, TimeoutError) as error:  # NotFound: deleted while being updated
            log.warning("%s: cannot look the station up: %s", station_id, error)
            return _refuse(HTTPStatus.SERVICE_UNAVAILABLE, "try again later")
        if station is None:
            log.warning("%s: unknown station refused (auto-register is off)", station_id)
            return _refuse(HTTPStatus.NOT_FOUND, "unknown station")
        credentials = _basic_credentials(request)
        if station.password_hash is not None or self.config.require_password:
            if credentials is None or station.password_hash is None or credentials[0] != station_id:
                return _refuse(HTTPStatus.UNAUTHORIZED, "HTTP Basic authentication required", basic=True)
            if not await asyncio.to_thread(verify_password, credentials[1], station.password_hash):
                log.warning("%s: wrong password", station_id)
                return _refuse(HTTPStatus.UNAUTHORIZED, "wrong station id or password", basic=True)
        if not await self._takeover(station_id):
            return _refuse(HTTPStatus.CONFLICT, "this station id is connected already")
        self._admitted[connection] = (station_id, version)
        return None

    async def _station(self, station_id: str, version: OcppVersion) -> Station | None:
        stations = self.service.storage.stations
        bounded = self.service.bounded
        station = await bounded(stations.get(station_id))
        if station is None and self.config.auto_register:
            station = Station(id=station_id, ocpp_version=version, registered_at=self.clock.now())
            try:
                await bounded(stations.add(station))
                log.info("%s: registered on first connection (auto-register)", station_id)
            except Conflict:
                station = await bounded(stations.get(station_id))
        elif station is not None and station.ocpp_version is not version:
            station = replace(station, ocpp_version=version)
            await bounded(stations.update(station))
        return station

    async def _takeover(self, station_id: str) -> bool:
        """True if the id is free now (no connection, or a dead one that was closed)."""
        old = self.registry.get(station_id)
        if old is None:
            return True
        try:
            pong = await old.ws.ping()
            async with asyncio.timeout(self.config.takeover_probe_s):
                await pong
        except (TimeoutError, websockets.ConnectionClosed):
            log.warning("%s: new connection replaces one that stopped answering", station_id)
            self.registry.remove(old)
            old.replaced = True
            # Abort, not close: a peer that does not answer pings will not answer a closing handshake either.
            old.ws.transport.abort()
            return True
        log.warning("%s: second connection refused while the first is alive", station_id)
        return False

    # ------------------------------------------------------------------ connection

    async def _serve(self, connection: ServerConnection) -> None:
        admitted = self._admitted.pop(connection, None)
        if admitted is None:
            await connection.close(1008, "not admitted")
            return
        station_id, version = admitted
        link = LINKS[version](
            station_id,
            connection,
            self.service,
            self.clock,
            response_timeout_s=self.config.command_timeout_s,
            audit=self.journal if self.config.audit_frames else None,
        )
        self.registry.add(link)
        await self.service.connected(station_id, version)
        try:
            await link.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.registry.remove(link)
            if not link.replaced and self.registry.get(station_id) is None:
                await self.service.disconnected(station_id)
