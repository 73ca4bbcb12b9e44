"""``web_router(settings, services)``: the driver pages and the QR codes, as one router for the API's app."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ems.throttle import AuthThrottle, ThrottleSettings
from ems.web.context import DriverSite, EvseId, StationId
from ems.web.qr import evse_url, qr_svg
from ems.web.routes import driver_routes
from ems.web.services import WebServices, WebSettings


def web_router(settings: WebSettings, services: WebServices, *, throttle: ThrottleSettings | None = None) -> APIRouter:
    """Everything ``ems.web`` serves; the composition root includes it in the FastAPI app."""
    site = DriverSite(settings, services, AuthThrottle(throttle))
    router = APIRouter()
    router.include_router(driver_routes(site))

    @router.get(
        "/api/v1/stations/{station_id}/evses/{evse_id}/qr.svg",
        tags=["stations"],
        summary="The QR code of an EVSE's driver page (no key needed: it only encodes a public URL)",
        response_class=Response,
        responses={200: {"content": {"image/svg+xml": {}}}, 404: {"description": "no such station"}},
    )
    async def qr(station_id: StationId, evse_id: EvseId) -> Response:
        if await services.stations.get(station_id) is None:
            return Response(f"no station {station_id!r}", status_code=404, media_type="text/plain")
        svg = qr_svg(evse_url(settings.public_url, station_id, evse_id))
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})

    return router
