"""Issue 10: Schemathesis against ``/openapi.json``: no input gives a 500, every answer is documented.

Every operation gets ``EXAMPLES`` generated requests that fit the schema and ``EXAMPLES`` that
break it (wrong types, missing fields, no or bad key, ...), with the admin key, through the
ASGI app over a real (SQLite) database. Checked per answer, with Schemathesis' own checks:
not a server error; its status is documented for that operation; its content type is the
documented one (problem+json for errors). ~15 s on the 2-core CI machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

from ems.api.app import create_app
from ems.api.services import ApiServices
from ems.app import policy_from
from ems.bus import EventBus
from ems.clock import SystemClock
from ems.config import Settings
from ems.grid.capacity import CapacityPolicy
from ems.services.billing_setup import build_billing
from ems.services.capacity import CapacityService
from ems.sitefile import load_site_file
from ems.storage.factory import open_storage
from ems.throttle import AuthThrottle, ThrottleSettings
from tests.integration.api.conftest import EXAMPLE_SITE

KEY = "schemathesis-admin-key-0123456789"
EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    sites = load_site_file(EXAMPLE_SITE)
    config = Settings(  # type: ignore[call-arg]
        admin_api_key=KEY,
        data_dir=tmp_path,
        database_url=None,
        payment_webhook_secret="whsec-schemathesis-0123456789",
        _env_file=None,
    )
    services = ApiServices(storage=None, clock=SystemClock(), sites=sites, billing=None, bus=EventBus())  # type: ignore[arg-type]
    app = create_app(config, services)
    # Fuzzing sends many wrong keys on purpose; the throttle would turn the rest of the run into 429s.
    app.state.auth_throttle = AuthThrottle(ThrottleSettings(free_failures=10**9))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Schemathesis drives the app on an event loop of its own: the storage is opened there.
        storage = await open_storage(config)
        services.storage = storage
        services.analytics = storage.analytics
        services.billing = build_billing(
            storage,
            clock=services.clock,
            policy=policy_from(config, sites),
            webhook_secret=b"whsec-schemathesis-0123456789",
        )
        services.capacity = CapacityService(
            CapacityPolicy(sites), bus=services.bus, clock=services.clock, store=storage.signals
        )
        try:
            yield
        finally:
            await storage.close()

    app.router.lifespan_context = lifespan
    yield app


@pytest.mark.slow
def test_no_input_gives_a_server_error_and_every_answer_is_documented(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                try:
                    # The ASGI client raises what the app raised (a 500 with a traceback in a server).
                    response = case.call(headers={"Authorization": f"Bearer {KEY}"})
                    case.validate_response(response, checks=CHECKS)
                except Exception as failure:  # recorded, so every operation is still exercised
                    failures.setdefault(label, f"{failure!r}"[:800])  # noqa: B023 (run before the loop moves on)

            with contextlib.suppress(Unsatisfiable):  # an operation with nothing to break (GET /health)
                run()
    assert operations >= 40 and calls >= operations * EXAMPLES, (operations, calls)
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
