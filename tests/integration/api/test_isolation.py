"""A workspace never sees or touches another's resources: every such id answers 404, and nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.store import sessions
from tests.integration.api.conftest import Tenant, assert_problem, create_session
from tests.integration.api.test_deliveries import dead_letter


async def test_every_resource_of_another_workspace_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    # Given workspace A's session (with a QR and a pairing code), message, endpoint, key and dead letter
    session_id = str((await create_session(client, tenant, phone="6281180164199"))["id"])
    await sessions.set_qr(redis, session_id, "2@qr", "2026-01-01T00:00:00Z", occurred_at_ms=1)
    sent = await client.post(
        f"/v1/sessions/{session_id}/messages",
        json={"to": "6281100000", "text": "hi", "client_message_id": "iso-1"},
        headers=tenant.headers,
    )
    message_id = sent.json()["id"]
    endpoint_id = (
        await client.post("/v1/endpoints", json={"url": "https://a.example"}, headers=tenant.headers)
    ).json()["id"]
    key_id = (await client.get("/v1/workspace", headers=tenant.headers)).json()["key_id"]
    delivery_id = await dead_letter(redis, tenant, endpoint_id, 1, datetime(2026, 11, 27, tzinfo=UTC))
    commands_before = await redis.xlen(keys.session_commands(session_id))
    b = other_tenant.headers
    # When workspace B uses those ids on every route
    calls = [
        ("GET", f"/v1/sessions/{session_id}", None),
        ("GET", f"/v1/sessions/{session_id}/qr", None),
        ("GET", f"/v1/sessions/{session_id}/qr.png", None),
        ("GET", f"/v1/sessions/{session_id}/pairing-code", None),
        ("POST", f"/v1/sessions/{session_id}/pairing-code", {}),
        ("POST", f"/v1/sessions/{session_id}/restart", None),
        ("POST", f"/v1/sessions/{session_id}/logout", None),
        ("POST", f"/v1/sessions/{session_id}/messages", {"to": "6281100000", "text": "x", "client_message_id": "b"}),
        ("DELETE", f"/v1/sessions/{session_id}", None),
        ("GET", f"/v1/messages/{message_id}", None),
        ("GET", f"/v1/endpoints/{endpoint_id}", None),
        ("PATCH", f"/v1/endpoints/{endpoint_id}", {"enabled": False}),
        ("POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", {}),
        ("POST", f"/v1/endpoints/{endpoint_id}/test", None),
        ("DELETE", f"/v1/endpoints/{endpoint_id}", None),
        ("POST", f"/v1/keys/{key_id}/rotate", {}),
        ("DELETE", f"/v1/keys/{key_id}", None),
        ("GET", f"/v1/deliveries/attempts?delivery_id={delivery_id}", None),
        ("POST", f"/v1/deliveries/{delivery_id}/retry", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=b)
        # Then each is 404, as if the id did not exist
        assert_problem(response, 404)
    # And B's lists do not show A's things
    assert (await client.get("/v1/sessions", headers=b)).json()["items"] == []
    assert (await client.get("/v1/endpoints", headers=b)).json() == []
    assert (await client.get("/v1/deliveries/dead-letters", headers=b)).json()["items"] == []
    assert (await client.get("/v1/deliveries/attempts?event_id=evt_0001", headers=b)).json() == []
    assert [k["id"] for k in (await client.get("/v1/keys", headers=b)).json()] != [key_id]
    # And nothing of A's changed
    assert await redis.xlen(keys.session_commands(session_id)) == commands_before
    assert (await client.get(f"/v1/sessions/{session_id}", headers=tenant.headers)).json()["status"] == "qr"
    assert (await client.get(f"/v1/endpoints/{endpoint_id}", headers=tenant.headers)).json()["enabled"] is True
    assert (await client.get("/v1/workspace", headers=tenant.headers)).status_code == 200
