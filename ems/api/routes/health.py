"""Liveness and readiness (no authentication; nothing secret in either).

- ``GET /health/live``: the process answers HTTP (200 while the event loop runs). For a
  liveness probe: restart the process only when this fails.
- ``GET /health``: readiness. ``200 {"status": "ok"}`` when every check is ready, else
  ``503 {"status": "degraded"}``; either way every check with its detail (``ems.health``):
  the database, each supervised component, the OCPP journal lag and applier, the
  controller's last plan per site and its age, the MQTT link.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ems import __version__
from ems.api.auth import Services
from ems.errors import StorageError

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Liveness: the process answers (no authentication)")
async def live() -> dict[str, str]:
    return {"status": "alive", "version": __version__}


@router.get(
    "/health",
    summary="Readiness of every component (no authentication)",
    responses={503: {"description": "not ready: the failing checks say why"}},
)
async def health(services: Services) -> JSONResponse:
    checks: dict[str, object] = {}
    ready = True
    try:
        await services.storage.health()
        database: dict[str, object] = {"ok": True, "backend": services.storage.backend}
    except StorageError as exc:
        # Never the error's text: it may name the database's address (the log has the detail).
        database = {"ok": False, "error": type(exc).__name__}
        ready = False
    if services.health is not None:
        for check in services.health.checks():
            checks[check.name] = {"ready": check.ready, **check.detail}
            ready = ready and check.ready
    body = {"status": "ok" if ready else "degraded", "version": __version__, "database": database, "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
