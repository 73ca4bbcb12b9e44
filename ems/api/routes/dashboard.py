"""The old dashboard's addresses: the operator's console (``ems.console``, at ``/console``) replaced it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(tags=["dashboard"], include_in_schema=False)

CONSOLE = "/console"


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse(CONSOLE)


@router.get("/dashboard")
async def dashboard() -> RedirectResponse:
    """Old bookmarks land on the console (its own sign-in)."""
    return RedirectResponse(CONSOLE, status_code=301)
