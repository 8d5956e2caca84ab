"""API keys: hashed, scoped, rotated with a grace window, revoked; the admin key creates workspaces."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from functions.api.auth import hash_key
from shared import redis_keys as keys
from tests.integration.api.conftest import ADMIN_HEADERS, Tenant, assert_problem, key_for


async def test_no_key_or_an_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/sessions")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    unknown = await client.get("/v1/sessions", headers={"Authorization": "Bearer wagw_sk_nope"})
    assert_problem(unknown, 401)


async def test_a_key_without_the_scope_is_403(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # Given a read-only key
    reader = await key_for(tenant, ["read"])
    # Then it can list sessions but not create one, send, or register an endpoint
    assert (await client.get("/v1/sessions", headers=reader.headers)).status_code == 200
    body = assert_problem(await client.post("/v1/sessions", json={}, headers=reader.headers), 403)
    assert "manage" in str(body["detail"])
    sent = await client.post(
        "/v1/sessions/ses_x/messages",
        json={"to": "6281100", "text": "hi", "client_message_id": "c1"},
        headers=reader.headers,
    )
    assert_problem(sent, 403)
    assert_problem(await client.post("/v1/endpoints", json={"url": "https://e.example"}, headers=reader.headers), 403)


async def test_admin_creates_a_workspace_and_keys_stored_only_as_hashes(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    # When the admin creates a workspace and a key for it
    workspace = await client.post("/v1/admin/workspaces", json={"name": "initech"}, headers=ADMIN_HEADERS)
    assert workspace.status_code == 201
    ws_id = workspace.json()["id"]
    created = await client.post(
        f"/v1/admin/workspaces/{ws_id}/keys", json={"name": "ops", "scopes": ["read", "manage"]}, headers=ADMIN_HEADERS
    )
    # Then the key works, is shown once, and Redis holds only its hash
    assert created.status_code == 201
    key = created.json()["key"]
    me = await client.get("/v1/workspace", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["workspace"]["id"] == ws_id and me.json()["scopes"] == ["manage", "read"]
    assert await redis.exists(keys.api_key(hash_key(key)))
    stored = [await redis.dump(name) async for name in redis.scan_iter()]
    assert stored and not any(key.encode() in (blob or b"") for blob in stored)
    listed = (await client.get(f"/v1/admin/workspaces/{ws_id}/keys", headers=ADMIN_HEADERS)).json()
    assert [k["prefix"] for k in listed] == [key[:14]] and "key" not in listed[0]


async def test_admin_routes_refuse_workspace_keys_and_unknown_workspaces(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert_problem(await client.post("/v1/admin/workspaces", json={"name": "x"}, headers=tenant.headers), 401)
    missing = await client.post("/v1/admin/workspaces/ws_nope/keys", json={}, headers=ADMIN_HEADERS)
    assert_problem(missing, 404)


async def test_rotation_keeps_the_old_key_for_the_grace_window_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    me = (await client.get("/v1/workspace", headers=tenant.headers)).json()
    # When the key is rotated with a grace window, the old one still works alongside the new one
    rotated = await client.post(f"/v1/keys/{me['key_id']}/rotate", json={"grace_seconds": 600}, headers=tenant.headers)
    assert rotated.status_code == 201
    new = Tenant(tenant.workspace_id, rotated.json()["key"])
    assert (await client.get("/v1/workspace", headers=tenant.headers)).status_code == 200
    listed = (await client.get("/v1/keys", headers=new.headers)).json()
    assert sorted(k["expires_at"] is None for k in listed) == [False, True]
    # When the new one is rotated without grace, it stops at once
    again = await client.post(f"/v1/keys/{rotated.json()['id']}/rotate", json={"grace_seconds": 0}, headers=new.headers)
    assert again.status_code == 201
    assert_problem(await client.get("/v1/workspace", headers=new.headers), 401)


async def test_a_revoked_key_stops_working_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    spare = await key_for(tenant, ["read"])
    spare_id = (await client.get("/v1/workspace", headers=spare.headers)).json()["key_id"]
    revoked = await client.delete(f"/v1/keys/{spare_id}", headers=tenant.headers)
    assert revoked.status_code == 204
    assert_problem(await client.get("/v1/workspace", headers=spare.headers), 401)
    assert_problem(await client.delete(f"/v1/keys/{spare_id}", headers=tenant.headers), 404)


async def test_the_admin_key_can_come_from_secrets_manager(
    client: httpx.AsyncClient, aws_endpoint: str, env: pytest.MonkeyPatch
) -> None:
    # Given the admin key kept in Secrets Manager (LocalStack) rather than in settings
    from functions.api import auth
    from shared import aws
    from tests.conftest import refresh_settings

    name = f"wagw-admin-{uuid.uuid4().hex[:8]}"
    aws.secrets_manager().create_secret(Name=name, SecretString="from-secrets-manager")
    env.setenv("WAGW_ADMIN_API_KEY_SECRET_NAME", name)
    env.setattr(auth, "_admin_cache", None)
    refresh_settings()
    try:
        # Then that key is the admin key, and the settings default is not
        ok = await client.post(
            "/v1/admin/workspaces", json={"name": "x"}, headers={"Authorization": "Bearer from-secrets-manager"}
        )
        assert ok.status_code == 201
        assert_problem(await client.post("/v1/admin/workspaces", json={"name": "x"}, headers=ADMIN_HEADERS), 401)
    finally:
        aws.secrets_manager().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


async def test_concurrent_requests_with_an_uncached_key_share_one_lookup(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a key this process has not cached, and a count of the lookups that reach Redis
    from functions.api import auth

    auth.forget(hash_key(tenant.key))
    lookups = 0
    real_lookup = auth.api_keys.api_key_by_hash

    async def counted(redis: Redis, key_hash: str) -> object:
        nonlocal lookups
        lookups += 1
        return await real_lookup(redis, key_hash)

    monkeypatch.setattr(auth.api_keys, "api_key_by_hash", counted)
    # When 50 requests with that key arrive at once
    answers = await asyncio.gather(*(client.get("/v1/workspace", headers=tenant.headers) for _ in range(50)))
    # Then every one is answered, and Redis was asked once
    assert [a.status_code for a in answers] == [200] * 50
    assert lookups == 1


async def test_a_lookup_racing_a_revocation_is_not_cached(redis: Redis, tenant: Tenant) -> None:
    # Given a lookup of a key that is in flight when the key is revoked in this process
    from functions.api import auth

    key_hash = hash_key(tenant.key)
    auth.forget(key_hash)
    lookup = asyncio.ensure_future(auth._lookup(key_hash))
    await asyncio.sleep(0)
    auth.forget(key_hash)
    # When the lookup completes
    assert await lookup is not None
    # Then its answer was not cached: the next request reads Redis again
    assert key_hash not in auth._key_cache
