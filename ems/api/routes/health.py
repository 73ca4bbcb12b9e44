"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ems import __version__
from ems.api.auth import Services
from ems.errors import StorageError

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and database readiness (no authentication)")
async def health(services: Services) -> JSONResponse:
    try:
        await services.storage.health()
    except StorageError as exc:
        # Never the error's text: it may name the database's address (the log has the detail).
        body = {"status": "degraded", "version": __version__, "database": {"ok": False, "error": type(exc).__name__}}
        return JSONResponse(body, status_code=503)
    body = {"status": "ok", "version": __version__, "database": {"ok": True, "backend": services.storage.backend}}
    return JSONResponse(body)
