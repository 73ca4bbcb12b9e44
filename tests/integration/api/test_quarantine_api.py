"""GET /api/v1/ocpp/quarantine: operator role, newest first, paginated, filtered by source (both back ends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from ems.domain.quarantine import QuarantineSource, quarantined
from ems.ports.stores import Storage

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


async def test_quarantine_is_listed_for_operators(
    client: httpx.AsyncClient, admin: dict[str, str], storage: Storage
) -> None:
    for i in range(5):
        source = QuarantineSource.OCPP if i < 4 else QuarantineSource.BILLING
        entry = quarantined(
            source,
            station_id="CP-1",
            action="1.6 StatusNotification",
            payload=f'{{"n":{i}}}',
            reason=f"reason {i}",
            received_at=T0,
            quarantined_at=T0 + timedelta(seconds=i),
        )
        assert await storage.quarantine.add(entry)
        assert not await storage.quarantine.add(entry)  # the same message is stored once
    r = await client.get("/api/v1/ocpp/quarantine", params={"limit": 2, "offset": 1}, headers=admin)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 5 and [e["reason"] for e in page["items"]] == ["reason 3", "reason 2"]
    r = await client.get("/api/v1/ocpp/quarantine", params={"source": "billing"}, headers=admin)
    assert [e["payload"] for e in r.json()["items"]] == ['{"n":4}'] and r.json()["total"] == 1
    assert (await client.get("/api/v1/ocpp/quarantine", params={"limit": 0}, headers=admin)).status_code == 422
    assert (await client.get("/api/v1/ocpp/quarantine")).status_code == 401
    key = await client.post("/api/v1/api-keys", json={"name": "bi", "role": "analyst"}, headers=admin)
    analyst = {"Authorization": f"Bearer {key.json()['key']}"}
    assert (await client.get("/api/v1/ocpp/quarantine", headers=analyst)).status_code == 403
