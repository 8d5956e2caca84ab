"""Reads through the owning worker, the API's side alone (no worker answers here): isolation, a session that is
not connected, no owner or a dead one (503 at once), an owner that does not answer (504 within the timeout), and
what the worker finds in the stream. Against a real worker: tests/integration/session_workers/test_reads.py."""

from __future__ import annotations

import time

import httpx
import pytest
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import ReadCommand, parse_command
from shared.events import SessionStatus
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import SessionRecord, now_ms
from tests.integration.api.conftest import Tenant, assert_problem


async def ready_session(redis: Redis, tenant: Tenant, sid: str, owner: str | None, beat_ms_ago: int = 0) -> str:
    record = SessionRecord(id=sid, workspace_id=tenant.workspace_id, status=SessionStatus.READY, owner=owner)
    await sessions.create_session(redis, record)
    if owner:
        await redis.zadd(keys.workers(), {owner: now_ms() - beat_ms_ago})
    return sid


async def test_another_workspaces_session_is_not_found(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given a connected session of another workspace
    sid = await ready_session(redis, other_tenant, "ses_theirs", owner="worker-x")
    # When this tenant asks it anything
    for path in ("contacts/15550014001", "chats", "chats/15550014001/messages", "groups"):
        response = await client.get(f"/v1/sessions/{sid}/{path}", headers=tenant.headers)
        # Then it does not exist, and nothing was asked of the worker
        assert_problem(response, 404)
    assert not await redis.exists(keys.session_commands(sid))


async def test_no_owner_or_a_dead_one_is_503_at_once(client: httpx.AsyncClient, redis: Redis, tenant: Tenant) -> None:
    # Given a session nobody drives, and one whose worker stopped beating a minute ago
    unowned = await ready_session(redis, tenant, "ses_unowned", owner=None)
    dead = await ready_session(redis, tenant, "ses_dead", owner="worker-dead", beat_ms_ago=60_000)
    for sid in (unowned, dead):
        # When the tenant lists its chats
        started = time.monotonic()
        response = await client.get(f"/v1/sessions/{sid}/chats", headers=tenant.headers)
        # Then it is told at once to come back, and nothing waits in the stream
        body = assert_problem(response, 503)
        assert body["type"] == "/problems/worker-unavailable" and response.headers["retry-after"] == "5"
        assert time.monotonic() - started < 1.0
        assert not await redis.exists(keys.session_commands(sid))


async def test_an_owner_that_does_not_answer_is_504_within_the_timeout(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant, env: pytest.MonkeyPatch
) -> None:
    # Given a live owner that never answers, and a read timeout of one second
    env.setenv("WAGW_API_READ_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    sid = await ready_session(redis, tenant, "ses_silent", owner="worker-silent")
    # When the tenant reads a chat's history
    started = time.monotonic()
    response = await client.get(f"/v1/sessions/{sid}/chats/15550014002/messages?limit=5", headers=tenant.headers)
    # Then it gets a 504 after about the timeout
    assert_problem(response, 504)
    assert 0.9 < time.monotonic() - started < 2.5
    # And the worker would find a read that names what was asked and when nobody waits for it any more
    [(_, fields)] = await redis.xrange(keys.session_commands(sid))
    command = parse_command(fields)
    assert isinstance(command, ReadCommand)
    assert (command.query, command.target, command.limit) == ("messages", "15550014002@c.us", 5)
    assert command.expires_at_ms <= now_ms() + 100


async def test_bad_reads_are_refused_before_anything_is_asked(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant
) -> None:
    sid = await ready_session(redis, tenant, "ses_bad", owner="worker-y")
    not_ready = await ready_session(redis, tenant, "ses_qr", owner="worker-y")
    await redis.hset(keys.session(not_ready), "status", "qr")
    # A phone that is not one, a group id that is not a group, a cursor the API never gave, a session showing a QR
    assert_problem(await client.get(f"/v1/sessions/{sid}/contacts/+1-555", headers=tenant.headers), 422)
    assert_problem(await client.get(f"/v1/sessions/{sid}/groups/123@c.us/participants", headers=tenant.headers), 422)
    assert_problem(await client.get(f"/v1/sessions/{sid}/chats?cursor=%%%", headers=tenant.headers), 400)
    conflict = assert_problem(await client.get(f"/v1/sessions/{not_ready}/chats", headers=tenant.headers), 409)
    assert "status qr" in str(conflict["detail"])
    assert not await redis.exists(keys.session_commands(sid))
