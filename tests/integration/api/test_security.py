"""Issue 10, security settings through the API: throttled wrong keys, expiring keys, body size, /health secrets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.clock import FakeClock
from ems.config import Settings
from ems.errors import StorageUnavailable
from tests.integration.api.conftest import ADMIN_KEY

PROBLEM = "application/problem+json"


def _client(services: ApiServices, **settings: object) -> httpx.AsyncClient:
    app = create_app(Settings(admin_api_key=ADMIN_KEY, _env_file=None, **settings), services)  # type: ignore[arg-type,call-arg]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ems.test")


@pytest.fixture
async def api(api_services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(api_services, api_max_body_bytes=4_096) as c:
        yield c


async def test_wrong_keys_are_throttled_with_retry_after_and_logged(
    api: httpx.AsyncClient, api_services: ApiServices, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(api_services.clock, FakeClock)
    caplog.set_level(logging.WARNING, logger="ems.security")
    statuses = []
    for i in range(300):  # the 300 wrong keys
        r = await api.get("/api/v1/stations", headers={"Authorization": f"Bearer wrong-key-{i}"})
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5, "five free failures"
    assert statuses[5] == 401, "the sixth is checked, and locks the source out"
    assert set(statuses[6:]) == {429}, "then refused unchecked while locked out"
    assert r.headers["content-type"] == PROBLEM and int(r.headers["Retry-After"]) >= 1
    # Even the right key waits out the lockout from this source ...
    r = await api.get("/api/v1/stations", headers=admin)
    assert r.status_code == 429
    # ... and gets in once it is over.
    api_services.clock.advance(int(r.headers["Retry-After"]))
    r = await api.get("/api/v1/stations", headers=admin)
    assert r.status_code == 200, r.text
    events = [rec for rec in caplog.records if rec.name == "ems.security"]
    assert any(getattr(rec, "security_event", None) == "api_auth_failed" for rec in events)
    assert any(getattr(rec, "security_event", None) == "api_auth_throttled" for rec in events)
    assert all("wrong-key" not in rec.getMessage() for rec in events), "a guessed key is never logged"


async def test_a_request_without_a_key_is_not_counted(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for _ in range(20):
        assert (await api.get("/api/v1/stations")).status_code == 401
    assert (await api.get("/api/v1/stations", headers=admin)).status_code == 200


async def test_api_keys_can_expire(api: httpx.AsyncClient, api_services: ApiServices, admin: dict[str, str]) -> None:
    assert isinstance(api_services.clock, FakeClock)
    r = await api.post(
        "/api/v1/api-keys", json={"name": "temp", "role": "analyst", "expires_in_days": 2}, headers=admin
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["expires_at"] is not None
    key = {"Authorization": f"Bearer {created['key']}"}
    assert (await api.get("/api/v1/stations", headers=key)).status_code == 200
    api_services.clock.advance(timedelta(days=2).total_seconds())
    r = await api.get("/api/v1/stations", headers=key)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    listed = (await api.get("/api/v1/api-keys", headers=admin)).json()
    assert [k["expires_at"] for k in listed if k["id"] == created["id"]] == [created["expires_at"]]
    for bad in (0, -1, 3651, "soon"):
        r = await api.post(
            "/api/v1/api-keys", json={"name": "bad", "role": "analyst", "expires_in_days": bad}, headers=admin
        )
        assert r.status_code == 422, (bad, r.text)


async def test_request_bodies_are_limited(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    big = {"id": "CP-BIG", "password": "station-secret-1", "padding": "x" * 5_000}
    r = await api.post("/api/v1/stations", json=big, headers=admin)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM, r.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"id": "CP-BIG", "x": "'
        for _ in range(10):
            yield b"y" * 1_000
        yield b'"}'

    r = await api.post("/api/v1/stations", content=chunks(), headers={**admin, "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM, r.text
    assert (await api.get("/api/v1/stations/CP-BIG", headers=admin)).status_code == 404


class _DownStorage:
    """The storage of ``api_services`` whose health check fails with a URL and password in its message."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def health(self) -> None:
        raise StorageUnavailable("cannot connect to PostgreSQL at postgresql://ems@db:5432/ems?password=hunter2hunter2")


async def test_health_never_shows_the_database_url_or_a_password(api_services: ApiServices) -> None:
    api_services.storage = _DownStorage(api_services.storage)  # type: ignore[assignment]
    async with _client(api_services) as api:
        for headers in ({}, {"Authorization": f"Bearer {ADMIN_KEY}"}):
            r = await api.get("/health", headers=headers)
            assert r.status_code == 503
            assert "hunter2" not in r.text and "postgresql://" not in r.text and "db:5432" not in r.text, r.text
