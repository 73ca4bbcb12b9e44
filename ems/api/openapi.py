"""The OpenAPI document says which problem+json answers each operation can give.

FastAPI documents the success answer and a 422 in its own error shape; ems answers every
error as ``application/problem+json`` (``problems.py``). ``install`` adds, per operation, the
answers that follow from how it is built, in the problem shape:

- with ``Authorization`` (everything under ``/api/v1`` but the payment webhook): 401 (no,
  unknown, revoked or expired key), 403 (role too low), 429 (too many failed
  authentications from this address; ``Retry-After``);
- every operation: 413 (a body over ``EMS_API_MAX_BODY_BYTES``, whatever the method);
- with a request body: 400 (not JSON / not UTF-8);
- with parameters or a body: 422 (every bad field listed);
- with a path parameter: 404;
- reaching the database: 503 (it does not answer).

Answers particular to one operation (409 on a duplicate id, 402, 501, ...) are declared on
its route with ``responses={409: problem("...")}``. The Schemathesis test
(``tests/integration/api/test_schemathesis.py``) checks that every status an operation
answered is documented here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ems.api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_REF = {"$ref": "#/components/schemas/Problem"}


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response object: ``description``, as problem+json."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _REF}}}


def problem(description: str) -> dict[str, Any]:
    """A route's extra answer, for ``responses={404: problem("no such thing")}``."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _REF}}}


_GENERIC = {
    "400": "the body is not JSON (or not UTF-8)",
    "401": "no API key, or an unknown, revoked or expired one",
    "403": "the key's role is too low for this",
    "404": "not found",
    "413": "the request body is larger than EMS_API_MAX_BODY_BYTES",
    "422": "invalid request: every bad field is listed in errors",
    "429": "too many failed authentications from this address; see Retry-After",
    "503": "the database (or a part this needs) is not available; retry later",
}


def _statuses(path: str, operation: dict[str, Any]) -> list[str]:
    out = []
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if operation.get("security"):
        out += ["401", "403", "429"]
    out.append("413")  # any request may come with a body (a GET too): the limit applies to all
    if has_body:
        out.append("400")
    if has_body or parameters:
        out.append("422")
    if any(p.get("in") == "path" for p in parameters):
        out.append("404")
    if path.startswith("/api/") or path == "/health":
        out.append("503")
    return out


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the problem answers added to every operation (in place; returned)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/health") or path == "/metrics":
            continue  # not problem+json: their own bodies, documented on their routes
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                current = responses.get(status)
                if current is None or "HTTPValidationError" in str(current):
                    responses[status] = problem_response(_GENERIC[status])
            for status, response in responses.items():
                if status[:1] in ("4", "5"):  # a route's own error answers are problems too
                    response["content"] = problem_response("")["content"]
                    response["description"] = response.get("description") or _GENERIC.get(status, "error")
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(schema.get("paths")):
            schemas.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the documented schema (built once, on first use)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
