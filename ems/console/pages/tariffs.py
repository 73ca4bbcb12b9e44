"""Tariffs: the list with where each applies, and editing one tariff's net prices."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ems.console.auth import Viewer
from ems.console.context import Console
from ems.domain.money import CurrencyError, check_currency
from ems.domain.tariff import tariff_problems
from ems.errors import NotFound

TARIFF_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Name", "text"),
    "currency": ("Currency", "currency"),
    "energy_per_kwh": ("Price per kWh", "price"),
    "time_per_minute": ("Price per minute charging", "price"),
    "parking_per_minute": ("Price per minute plugged in", "price"),
    "session_fee": ("Session fee", "price"),
    "idle_per_minute": ("Idle fee per minute", "price"),
    "idle_grace_minutes": ("Idle grace (minutes)", "int"),
    "vat_percent": ("VAT (%)", "price"),
    "description": ("Description", "text"),
}
"""The tariff fields the console edits (net prices); time-of-use bands are kept as they are (API)."""


def tariff_changes(fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's values of ``TARIFF_FIELDS``, and the fields that do not parse, each with its message."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (label, kind) in TARIFF_FIELDS.items():
        raw = fields.get(name, "").strip()
        if kind == "text":
            changes[name] = raw
        elif kind == "currency":
            try:
                changes[name] = check_currency(raw.upper())
            except CurrencyError as exc:
                errors[name] = str(exc)
        elif kind == "int":
            try:
                changes[name] = int(raw or "0")
            except ValueError:
                errors[name] = "A whole number of minutes."
        else:
            try:
                number = Decimal(raw or "0")
            except InvalidOperation:
                number = Decimal("NaN")
            if number.is_finite():
                changes[name] = number
            else:
                errors[name] = f"{label}: a number like 0.30."
    return changes, errors


def register(console: Console) -> None:
    tariffs = console.billing.service.billing.tariffs

    @console.get("/tariffs")
    async def tariffs_page(request: Request, viewer: Viewer) -> Response:
        found = await tariffs.all()
        assignments = await tariffs.assignments()
        return console.page(request, "tariffs.html", viewer, tariffs=found, assignments=assignments, title="Tariffs")

    async def tariff_page(
        request: Request,
        viewer: Viewer,
        tariff_id: str,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        tariff = await tariffs.get(tariff_id)
        if tariff is None:
            raise NotFound(f"no tariff {tariff_id!r}")
        shown = {f: str(getattr(tariff, f)) for f in TARIFF_FIELDS}
        shown.update(values or {})
        return console.page(
            request,
            "tariff.html",
            viewer,
            tariff=tariff,
            values=shown,
            errors=errors or {},
            notice=notice,
            status=status,
            title=f"Tariff {tariff.name}",
            fields=TARIFF_FIELDS,
        )

    @console.get("/tariffs/{tariff_id}")
    async def tariff_view(request: Request, viewer: Viewer, tariff_id: str) -> Response:
        return await tariff_page(request, viewer, tariff_id)

    @console.post("/tariffs/{tariff_id}")
    async def tariff_edit(request: Request, viewer: Viewer, tariff_id: str) -> Response:
        fields = await console.posted(request, viewer)
        tariff = await tariffs.get(tariff_id)
        if tariff is None:
            raise NotFound(f"no tariff {tariff_id!r}")
        changes, errors = tariff_changes(fields)
        updated = tariff if errors else replace(tariff, **changes)
        if not errors:
            for problem in tariff_problems(updated):
                key = next((f for f in TARIFF_FIELDS if problem.startswith(f)), "_form")
                errors[key] = problem

        async def save() -> str:
            await tariffs.update(updated)
            return "Tariff saved."

        return await console.submit(
            lambda **shown: tariff_page(request, viewer, tariff_id, **shown), errors, save, values=fields, refusals=()
        )
