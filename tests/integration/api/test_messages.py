"""Sending: 202 and a command for the worker, idempotent on client_message_id, limited per session (429)."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import parse_command
from shared.redis_client import close_redis
from shared.store import messages, workspaces
from shared.store.messages import MessageStatus
from tests.conftest import refresh_settings
from tests.integration.api.conftest import Tenant, assert_problem, create_session, make_tenant
from wagw_local.services import start_redis


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


async def test_a_full_send_queue_answers_429_with_retry_after_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis, env: pytest.MonkeyPatch
) -> None:
    # Given send queues of 2 (nothing drains them here: no worker), paced at one send per 1 s + up to 1 s
    env.setenv("WAGW_SEND_QUEUE_MAX", "2")
    refresh_settings()
    session_id = str((await create_session(client, tenant))["id"])
    for i in range(2):
        ok = await client.post(f"/v1/sessions/{session_id}/messages", json=message(f"r-{i}"), headers=tenant.headers)
        assert ok.status_code == 202
    # When a third is sent at once
    limited = await client.post(f"/v1/sessions/{session_id}/messages", json=message("r-2"), headers=tenant.headers)
    # Then 429 says when a place frees up at the paced rate, and nothing was stored or queued
    body = assert_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 2 and body["retry_after"] == int(limited.headers["retry-after"])
    assert "queue is full" in body["detail"]
    assert await redis.xlen(keys.session_commands(session_id)) == 2
    assert await redis.zcard(keys.send_queue(session_id)) == 2
    assert not await redis.exists(keys.client_message(session_id, "r-2"))
    # And a repeat of an accepted message is still answered (it takes no place)
    repeat = await client.post(f"/v1/sessions/{session_id}/messages", json=message("r-0"), headers=tenant.headers)
    assert repeat.status_code == 202
    # And a workspace can allow a longer queue
    await workspaces.update_workspace(redis, tenant.workspace_id, send_queue_max=3)
    third = await client.post(f"/v1/sessions/{session_id}/messages", json=message("r-2"), headers=tenant.headers)
    assert third.status_code == 202


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


async def test_a_tenant_sees_and_clears_its_send_queue_but_never_a_send_in_flight(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    # Given three queued messages, the first already handed to WhatsApp by the worker (its 'sending' marker set)
    session_id = str((await create_session(client, tenant))["id"])
    ids = []
    for i in range(3):
        accepted = await client.post(
            f"/v1/sessions/{session_id}/messages", json=message(f"q-{i}"), headers=tenant.headers
        )
        ids.append(accepted.json()["id"])
    await redis.set(keys.session_sending(session_id, "q-0"), "true_6281180164100@c.us_3EB0X")
    # When the tenant looks at the queue
    queue = await client.get(f"/v1/sessions/{session_id}/queue", headers=tenant.headers)
    # Then it sees all three, oldest first
    assert queue.status_code == 200 and queue.json()["depth"] == 3
    assert [m["id"] for m in queue.json()["messages"]] == ids
    # When it clears the queue
    cleared = await client.delete(f"/v1/sessions/{session_id}/queue", headers=tenant.headers)
    # Then the two not started are cancelled (failed, with the reason; a worker reaching them only acknowledges)
    assert cleared.status_code == 200 and cleared.json()["cancelled"] == ids[1:]
    for message_id, client_id in zip(ids[1:], ("q-1", "q-2"), strict=True):
        record = await messages.get_message(redis, message_id)
        assert record is not None and record.status is MessageStatus.FAILED
        assert record.error is not None and record.error.startswith("cancelled")
        assert await redis.get(keys.session_sent(session_id, client_id)) == "cancelled"
    # And the one in flight stays queued
    after = (await client.get(f"/v1/sessions/{session_id}/queue", headers=tenant.headers)).json()
    assert after["depth"] == 1 and [m["id"] for m in after["messages"]] == ids[:1]


async def test_only_a_sent_message_can_be_deleted_or_edited(client: httpx.AsyncClient, tenant: Tenant) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    queued = (
        await client.post(f"/v1/sessions/{session_id}/messages", json=message("e-1"), headers=tenant.headers)
    ).json()
    # A message not sent yet cannot be deleted for everyone or edited (409 says why)
    deleted = await client.delete(f"/v1/messages/{queued['id']}", headers=tenant.headers)
    edited = await client.patch(f"/v1/messages/{queued['id']}", json={"text": "new"}, headers=tenant.headers)
    assert "only a sent message" in assert_problem(deleted, 409)["detail"]
    assert "only a sent message" in assert_problem(edited, 409)["detail"]
    # An empty edit is 422, an unknown message 404
    assert_problem(await client.patch(f"/v1/messages/{queued['id']}", json={"text": ""}, headers=tenant.headers), 422)
    assert_problem(await client.delete("/v1/messages/msg_nope", headers=tenant.headers), 404)


async def test_a_send_that_times_out_on_a_paused_redis_says_the_outcome_is_unknown_and_a_repeat_sends_it_once(
    app: FastAPI, env: pytest.MonkeyPatch
) -> None:
    # Given the API on a Redis of its own, with a session that has already sent once (its scripts loaded)
    server = start_redis()
    await close_redis()
    env.setenv("WAGW_REDIS_URL", server.url)
    refresh_settings()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
            tenant = await make_tenant("paused")
            session_id = str((await create_session(http, tenant))["id"])
            url = f"/v1/sessions/{session_id}/messages"
            assert (await http.post(url, json=message("c-warm"), headers=tenant.headers)).status_code == 202
            # When Redis stops answering (a paused or failing-over primary) while a send is posted
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                timed_out = await http.post(url, json=message("c-paused"), headers=tenant.headers)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            # Then the answer says the outcome is unknown, not that nothing changed
            body = assert_problem(timed_out, 503)
            assert body["type"] == "/problems/store-timeout"
            assert "unknown" in str(body["detail"]) and "nothing changed" not in str(body["detail"])
            # And the paused command did run once Redis was back: the repeat finds it and queues nothing more
            again = await http.post(url, json=message("c-paused"), headers=tenant.headers)
            assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
            direct = Redis.from_url(server.url, decode_responses=True)
            assert await direct.xlen(keys.session_commands(session_id)) == 2
            await direct.aclose()
    finally:
        await close_redis()
        server.stop()
