"""The foundation endpoints against real storage (SQLite and PostgreSQL)."""

import httpx

PROBLEM = "application/problem+json"


async def test_health_reports_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert body["database"]["backend"] in ("sqlite", "postgresql")


async def test_no_key_or_a_wrong_key_is_401_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/stations")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 401
    r = await client.get("/api/v1/stations", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await client.post("/api/v1/cards", json={"uid": "A1"})
    assert r.status_code == 401


async def test_station_lifecycle(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post(
        "/api/v1/stations",
        json={"id": "CP001", "password": "station-secret", "site_id": "depot", "circuit_id": "feeder-a"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["has_password"] is True and "password" not in created and "password_hash" not in created
    assert created["registered_at"] is not None

    r = await client.post("/api/v1/stations", json={"id": "CP001"}, headers=admin)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM

    r = await client.get("/api/v1/stations", headers=admin)
    assert [s["id"] for s in r.json()] == ["CP001"]

    r = await client.patch("/api/v1/stations/CP001", json={"password": ""}, headers=admin)
    assert r.status_code == 200 and r.json()["has_password"] is False
    assert r.json()["circuit_id"] == "feeder-a"

    r = await client.delete("/api/v1/stations/CP001", headers=admin)
    assert r.status_code == 204
    r = await client.get("/api/v1/stations/CP001", headers=admin)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


async def test_invalid_body_names_every_field_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    r = await client.post(
        "/api/v1/stations", json={"id": "bad id/with slash", "password": "short", "colour": "red"}, headers=admin
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"id", "password", "colour"} <= fields

    r = await client.post("/api/v1/stations", json={"id": "CP9", "site_id": "nowhere"}, headers=admin)
    assert r.status_code == 422
    assert "unknown site" in r.text
    assert (await client.get("/api/v1/stations", headers=admin)).json() == []


async def test_card_lifecycle(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post(
        "/api/v1/cards",
        json={"uid": "04A2B3C4", "expires_at": "2027-01-01T00:00:00Z", "label": "fleet 1"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "accepted" and r.json()["mode"] == "personal"
    assert (await client.post("/api/v1/cards", json={"uid": "04A2B3C4"}, headers=admin)).status_code == 409

    r = await client.patch("/api/v1/cards/04A2B3C4", json={"status": "blocked"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "blocked"
    assert r.json()["expires_at"].startswith("2027-01-01")

    r = await client.post("/api/v1/cards", json={"uid": "X", "expires_at": "2027-01-01T00:00:00"}, headers=admin)
    assert r.status_code == 422, "an expiry without a time zone is ambiguous"
    r = await client.post("/api/v1/cards", json={"uid": "Y", "status": "maybe"}, headers=admin)
    assert r.status_code == 422

    assert (await client.delete("/api/v1/cards/04A2B3C4", headers=admin)).status_code == 204
    assert (await client.delete("/api/v1/cards/04A2B3C4", headers=admin)).status_code == 404


async def test_api_keys_carry_roles_and_can_be_revoked(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post("/api/v1/api-keys", json={"name": "bi", "role": "analyst"}, headers=admin)
    assert r.status_code == 201
    analyst = {"Authorization": f"Bearer {r.json()['key']}"}
    analyst_id = r.json()["id"]
    r = await client.post("/api/v1/api-keys", json={"name": "ops", "role": "operator"}, headers=admin)
    operator = {"Authorization": f"Bearer {r.json()['key']}"}

    assert (await client.get("/api/v1/stations", headers=analyst)).status_code == 200
    r = await client.post("/api/v1/stations", json={"id": "CP2"}, headers=analyst)
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    assert (await client.post("/api/v1/stations", json={"id": "CP2"}, headers=operator)).status_code == 201
    assert (await client.get("/api/v1/api-keys", headers=operator)).status_code == 403

    listed = (await client.get("/api/v1/api-keys", headers=admin)).json()
    assert {k["name"] for k in listed} == {"bi", "ops"} and all("key" not in k for k in listed)

    assert (await client.delete(f"/api/v1/api-keys/{analyst_id}", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/stations", headers=analyst)).status_code == 401


async def test_sites_come_from_the_site_file(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.get("/api/v1/sites", headers=admin)
    assert [s["id"] for s in r.json()] == ["depot"]
    r = await client.get("/api/v1/sites/depot", headers=admin)
    site = r.json()
    assert site["capacity_w"] == 150000 and site["timezone"] == "Europe/Amsterdam"
    assert {c["id"] for c in site["circuits"]} == {"feeder-a", "feeder-b", "feeder-b-row-1"}
    assert (await client.get("/api/v1/sites/elsewhere", headers=admin)).status_code == 404


async def test_openapi_is_published(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/stations/{station_id}" in r.json()["paths"]


async def test_old_dashboard_addresses_lead_to_the_console(client: httpx.AsyncClient) -> None:
    """The console (``ems.console``, included by ``ems.app``) replaced the read-only dashboard."""
    r = await client.get("/dashboard")
    assert r.status_code == 301 and r.headers["location"] == "/console"
    r = await client.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/console"


async def test_live_view_needs_a_controller(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.get("/api/v1/sites/depot/live", headers=admin)
    assert r.status_code == 501 and "controller" in r.json()["detail"]
    assert (await client.get("/api/v1/sites/nowhere/live", headers=admin)).status_code == 404
