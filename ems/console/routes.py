"""``build_console(deps)``: the console's pages as one ``APIRouter`` under ``/console``.

Every page needs the analyst role at least (read-only); edits and station commands need operator.
Forms post back to their page, which shows the outcome or, field by field, what was wrong.
What the pages share (templates, sessions, the guard) is ``ems.console.context``; each concern's
pages are a module of ``ems.console.pages``.
"""

from __future__ import annotations

from fastapi import APIRouter

from ems.console.context import PREFIX, Console
from ems.console.deps import ConsoleDeps
from ems.console.pages import cards, load, sessions, sign_in, stations, tariffs, users

PAGES = (sign_in, stations, load, sessions, users, cards, tariffs)
"""In the order their routes are added."""


def build_console(deps: ConsoleDeps) -> APIRouter:
    """The console's router (include it in the application, e.g. ``app.include_router(...)``)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    console = Console(deps, router)
    for pages in PAGES:
        pages.register(console)
    return router
