"""Errors as RFC 9457 ``application/problem+json``; never a traceback to the client."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ems import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS_FOR: tuple[tuple[type[errors.EmsError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.IdempotencyConflict, 409),
    (errors.InsufficientFunds, 402),
    (errors.InvalidInput, 422),
    (errors.StationOffline, 409),
    (errors.StorageUnavailable, 503),
    (errors.NotAvailable, 501),
    (errors.ConfigError, 500),
)


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    429: "Too many requests",
}


def problem(
    status: int, title: str, detail: str | None = None, *, errors_list: Sequence[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors_list:
        body["errors"] = list(errors_list)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        return problem(422, "Invalid request", f"{len(problems)} field(s) failed validation", errors_list=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = TITLES.get(exc.status_code, "Error")
        response = problem(exc.status_code, title, str(exc.detail) if exc.detail else None)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(errors.EmsError)
    async def _ems(_: Request, exc: errors.EmsError) -> JSONResponse:
        status = next((code for kind, code in _STATUS_FOR if isinstance(exc, kind)), 400)
        if status >= 500:
            log.error("request failed: %s", exc)
        problems = getattr(exc, "problems", None)
        items = [{"field": "", "message": p} for p in problems] if problems else None
        title = type(exc).__name__
        detail = str(exc).split("\n", 1)[0]
        return problem(status, title, detail, errors_list=items)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in request", exc_info=exc)
        return problem(500, "Internal error", "the server could not complete the request; see its log")
