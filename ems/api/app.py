"""``create_app(settings, services)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ems import __version__
from ems.api import openapi, problems
from ems.api.limits import BodySizeLimit
from ems.api.observe import HttpMetrics, HttpStats
from ems.api.routes import (
    accounts,
    analytics,
    api_keys,
    capacity,
    cards,
    charge,
    commands,
    dashboard,
    health,
    live,
    metrics,
    payments,
    quarantine,
    reports,
    sessions,
    sites,
    stations,
    tariffs,
    users,
)
from ems.api.services import ApiServices
from ems.config import Settings
from ems.metrics import ApiCollector, RuntimeCollector, registry_of
from ems.throttle import AuthThrottle

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    stations.router,
    commands.router,
    sites.router,
    capacity.router,
    cards.router,
    api_keys.router,
    live.router,
    dashboard.router,
    users.router,
    accounts.router,
    tariffs.router,
    sessions.router,
    charge.router,
    reports.router,
    payments.router,
    quarantine.router,
    analytics.router,
)
"""Every router; a feature adds its module here."""


def create_app(settings: Settings, services: ApiServices) -> FastAPI:
    app = FastAPI(
        title="ems",
        version=__version__,
        summary="Smart-charging and energy-management system for EV charging sites",
        description=(
            "Everything under `/api/v1` needs `Authorization: Bearer <key>`. Errors are "
            "`application/problem+json` (RFC 9457); validation errors list every bad field."
        ),
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.settings = settings
    admin_key = settings.admin_api_key
    app.state.admin_api_key = admin_key.get_secret_value() if admin_key is not None else None
    app.state.auth_throttle = AuthThrottle(settings.throttle_settings())
    problems.install(app)
    http_stats = HttpStats()
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.api_max_body_bytes, stats=http_stats)
    app.add_middleware(HttpMetrics, stats=http_stats)  # outermost: counts the 413s too
    app.state.metrics = registry_of(
        ApiCollector(http_stats, app.state.auth_throttle), services.metrics, RuntimeCollector()
    )
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app
