"""The driver pages' router: each module of ``ems.web.pages`` adds its URLs; plus their script and styles."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from ems.web.context import DriverSite
from ems.web.pages import charger, charging, receipts, sign_in, top_up

PAGES = (charger, sign_in, top_up, charging, receipts)


def driver_routes(site: DriverSite) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for pages in PAGES:
        pages.register(router, site)

    @router.get("/static/web/{name}")
    async def static(name: Annotated[str, Path(pattern=r"^[a-z0-9_-]+\.(js|css)$")]) -> Response:
        file = resources.files("ems.web").joinpath(f"static/{name}")
        if not file.is_file():
            return Response(status_code=404)
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(file.read_text(encoding="utf-8"), media_type=media, headers={"Cache-Control": "max-age=300"})

    return router
