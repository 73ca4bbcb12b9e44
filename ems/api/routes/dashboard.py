"""The web dashboard: one static page that reads the REST API with the user's key."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard")
async def dashboard() -> HTMLResponse:
    page = resources.files("ems.api").joinpath("static/dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(page)
