"""Sending: 202 and a command for the worker, idempotent on client_message_id, limited per session (429)."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import parse_command
from shared.store import messages
from shared.store.messages import MessageStatus
from tests.conftest import refresh_settings
from tests.integration.api.conftest import Tenant, assert_problem, create_session


def message(client_id: str, text: str = "hello") -> dict[str, str]:
    return {"to": "6281180164100", "text": text, "client_message_id": client_id}


async def test_send_queues_a_command_and_status_follows_the_events(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    # When a message is sent
    response = await client.post(f"/v1/sessions/{session_id}/messages", json=message("c-1"), headers=tenant.headers)
    # Then it is accepted as queued, and the worker's stream holds the send command
    assert response.status_code == 202
    sent = response.json()
    assert sent["status"] == "queued" and sent["to"] == "6281180164100@c.us"
    assert response.headers["location"] == f"/v1/messages/{sent['id']}"
    ((_, fields),) = await redis.xrange(keys.session_commands(session_id))
    command = parse_command(fields)
    assert command.type == "send_text" and command.message_id == sent["id"] and command.text == "hello"
    # And when ingest records the delivery ack, the status shows it
    await messages.advance_status(redis, session_id, status=MessageStatus.DELIVERED, message_id=sent["id"])
    got = await client.get(f"/v1/messages/{sent['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["status"] == "delivered"


async def test_a_repeat_returns_the_first_message_and_queues_nothing(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    first = await client.post(f"/v1/sessions/{session_id}/messages", json=message("c-2"), headers=tenant.headers)
    again = await client.post(f"/v1/sessions/{session_id}/messages", json=message("c-2"), headers=tenant.headers)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert await redis.xlen(keys.session_commands(session_id)) == 1


async def test_the_same_client_id_for_another_message_is_409(client: httpx.AsyncClient, tenant: Tenant) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    await client.post(f"/v1/sessions/{session_id}/messages", json=message("c-3"), headers=tenant.headers)
    other = await client.post(
        f"/v1/sessions/{session_id}/messages", json=message("c-3", "different"), headers=tenant.headers
    )
    assert_problem(other, 409)


async def test_the_send_limit_answers_429_with_retry_after_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis, env: pytest.MonkeyPatch
) -> None:
    # Given a limit of 2 a minute
    env.setenv("WAGW_API_SEND_LIMIT_PER_MINUTE", "2")
    refresh_settings()
    session_id = str((await create_session(client, tenant))["id"])
    for i in range(2):
        ok = await client.post(f"/v1/sessions/{session_id}/messages", json=message(f"r-{i}"), headers=tenant.headers)
        assert ok.status_code == 202
    # When a third is sent at once
    limited = await client.post(f"/v1/sessions/{session_id}/messages", json=message("r-2"), headers=tenant.headers)
    # Then 429 says when to retry (one token refills in 30 s), and nothing was stored or queued
    body = assert_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 30 and body["retry_after"] == int(limited.headers["retry-after"])
    assert await redis.xlen(keys.session_commands(session_id)) == 2
    assert not await redis.exists(keys.client_message(session_id, "r-2"))
    # And a repeat of an accepted message is still answered (it spends nothing)
    repeat = await client.post(f"/v1/sessions/{session_id}/messages", json=message("r-0"), headers=tenant.headers)
    assert repeat.status_code == 202


async def test_sending_through_a_retired_session_is_409(client: httpx.AsyncClient, tenant: Tenant) -> None:
    old = await create_session(client, tenant, phone="6281180164104")
    await create_session(client, tenant, phone="6281180164104")
    refused = await client.post(f"/v1/sessions/{old['id']}/messages", json=message("c-4"), headers=tenant.headers)
    assert_problem(refused, 409)


async def test_unknown_session_or_message_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert_problem(
        await client.post("/v1/sessions/ses_nope/messages", json=message("c-5"), headers=tenant.headers), 404
    )
    assert_problem(await client.get("/v1/messages/msg_nope", headers=tenant.headers), 404)
