"""The URLs of the driver pages, each handed to ``DriverPages`` (``ems.web.driver``)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from ems.web.driver import ChargeId, DriverPages, EvseId, StationId


def driver_routes(pages: DriverPages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/c/{station_id}/{evse_id}")
    async def charger(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await pages.charger(request, station_id, evse_id)

    @router.get("/c/{station_id}/{evse_id}/status.json")
    async def charger_status(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await pages.charger_status(request, station_id, evse_id)

    @router.post("/c/{station_id}/{evse_id}/sign-in")
    async def sign_in(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await pages.sign_in(request, station_id, evse_id)

    @router.post("/sign-in")
    async def sign_in_me(request: Request) -> Response:
        return await pages.sign_in(request, None, None)

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        return await pages.sign_out(request)

    @router.post("/c/{station_id}/{evse_id}/top-up")
    async def top_up(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await pages.top_up(request, station_id, evse_id)

    @router.post("/c/{station_id}/{evse_id}/start")
    async def start(request: Request, station_id: StationId, evse_id: EvseId) -> Response:
        return await pages.start(request, station_id, evse_id)

    @router.get("/charge/{charge_id}")
    async def charge(request: Request, charge_id: ChargeId) -> Response:
        return await pages.charge_page(request, charge_id)

    @router.get("/charge/{charge_id}/live.json")
    async def charge_live(request: Request, charge_id: ChargeId) -> Response:
        return await pages.charge_live(request, charge_id)

    @router.post("/charge/{charge_id}/stop")
    async def stop(request: Request, charge_id: ChargeId) -> Response:
        return await pages.stop(request, charge_id)

    @router.get("/me")
    async def me(request: Request) -> Response:
        return await pages.my_sessions(request)

    @router.get("/me/sessions/{session_id}")
    async def receipt(request: Request, session_id: ChargeId) -> Response:
        return await pages.receipt(request, session_id)

    @router.get("/pay/test/{reference}")
    async def pay_page(request: Request, reference: ChargeId) -> Response:
        return await pages.test_payment_page(request, reference)

    @router.post("/pay/test/{reference}")
    async def pay(request: Request, reference: ChargeId) -> Response:
        return await pages.test_payment_pay(request, reference)

    @router.get("/static/web/{name}")
    async def static(name: Annotated[str, Path(pattern=r"^[a-z0-9_-]+\.(js|css)$")]) -> Response:
        file = resources.files("ems.web").joinpath(f"static/{name}")
        if not file.is_file():
            return Response(status_code=404)
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(file.read_text(encoding="utf-8"), media_type=media, headers={"Cache-Control": "max-age=300"})

    return router
