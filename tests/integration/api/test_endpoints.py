"""Webhook endpoints: secret shown once, URL checked, rotation with overlap, enable/disable, signed test ping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from redis.asyncio import Redis
from standardwebhooks import Webhook

from shared.store import endpoints
from tests.integration.api.conftest import Tenant, assert_problem


class Receiver:
    """A real HTTP server on a free port that records what it was sent."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


async def test_create_shows_the_secret_once_and_crud_works(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # When an endpoint is created with an event filter
    created = await client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example.com/wa", "event_types": ["message.received", "session.status"]},
        headers=tenant.headers,
    )
    # Then the response carries a whsec_ secret that no later read shows
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["event_types"] == ["message.received", "session.status"]
    got = await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tenant.headers)
    assert "secret" not in got.json() and len(got.json()["secrets"]) == 1
    # And it can be disabled, updated, listed and deleted
    patched = await client.patch(
        f"/v1/endpoints/{endpoint['id']}", json={"enabled": False, "description": "paused"}, headers=tenant.headers
    )
    assert patched.json()["enabled"] is False and patched.json()["disabled_reason"] == "disabled_by_tenant"
    enabled = await client.patch(f"/v1/endpoints/{endpoint['id']}", json={"enabled": True}, headers=tenant.headers)
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
    assert [e["id"] for e in (await client.get("/v1/endpoints", headers=tenant.headers)).json()] == [endpoint["id"]]
    assert (await client.delete(f"/v1/endpoints/{endpoint['id']}", headers=tenant.headers)).status_code == 204
    assert_problem(await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tenant.headers), 404)


async def test_unsafe_urls_and_unknown_event_types_are_422(
    client: httpx.AsyncClient, tenant: Tenant, env: pytest.MonkeyPatch
) -> None:
    bad_scheme = await client.post("/v1/endpoints", json={"url": "ftp://hooks.example.com"}, headers=tenant.headers)
    assert assert_problem(bad_scheme, 422)["errors"][0]["field"] == "url"  # type: ignore[index]
    bad_type = await client.post(
        "/v1/endpoints", json={"url": "https://h.example.com", "event_types": ["nope"]}, headers=tenant.headers
    )
    assert_problem(bad_type, 422)


async def test_outside_dev_private_addresses_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, env: pytest.MonkeyPatch
) -> None:
    # Given staging rules (real secrets configured)
    env.setenv("WAGW_ENV", "staging")
    env.setenv("WAGW_ADMIN_API_KEY", "staging-admin-key")
    env.setenv("WAGW_PRODUCER_KEYS", '{"k1": "whsec_c3RhZ2luZy1wcm9kdWNlci1rZXk="}')
    from tests.conftest import refresh_settings

    refresh_settings()
    # Then loopback and plain http are refused
    for url in ("https://127.0.0.1/hook", "http://hooks.example.com/hook"):
        assert_problem(await client.post("/v1/endpoints", json={"url": url}, headers=tenant.headers), 422)


async def test_rotation_keeps_the_old_secret_signing_for_the_overlap(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    created = (await client.post("/v1/endpoints", json={"url": "https://h.example.com"}, headers=tenant.headers)).json()
    rotated = await client.post(
        f"/v1/endpoints/{created['id']}/rotate-secret", json={"overlap_seconds": 3600}, headers=tenant.headers
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    record = await endpoints.get_endpoint(redis, created["id"])
    assert record is not None and record.active_secrets() == [created["secret"], new_secret]
    assert record.secrets[0].expires_at_ms is not None and record.secrets[1].expires_at_ms is None
    # A rotation with no overlap drops every earlier secret at once
    await client.post(
        f"/v1/endpoints/{created['id']}/rotate-secret", json={"overlap_seconds": 0}, headers=tenant.headers
    )
    record = await endpoints.get_endpoint(redis, created["id"])
    assert record is not None and len(record.active_secrets()) == 1 and new_secret not in record.active_secrets()


async def test_test_ping_posts_a_signed_event_the_receiver_can_verify(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    created = (await client.post("/v1/endpoints", json={"url": receiver.url}, headers=tenant.headers)).json()
    # When the tenant asks for a test ping
    result = await client.post(f"/v1/endpoints/{created['id']}/test", headers=tenant.headers)
    # Then the receiver got one request, signed with the endpoint's secret (Standard Webhooks)
    assert result.status_code == 200 and result.json()["delivered"] is True and result.json()["status_code"] == 204
    ((headers, body),) = await asyncio.to_thread(lambda: list(receiver.received))
    payload = Webhook(created["secret"]).verify(body, headers)
    assert payload["type"] == "endpoint.test" and headers["webhook-id"] == result.json()["event_id"]


async def test_test_ping_to_a_dead_endpoint_reports_the_failure(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = (await client.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=tenant.headers)).json()
    result = (await client.post(f"/v1/endpoints/{created['id']}/test", headers=tenant.headers)).json()
    assert result["delivered"] is False and result["status_code"] is None and result["error"]
