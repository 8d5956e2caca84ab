"""The API with Redis at its memory limit (noeviction): writes answer 503 store-full with Retry-After, reads work."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.integration.api.conftest import Tenant, app, client, tenant

__all__ = ["app", "client", "tenant"]


async def test_api_writes_answer_503_with_retry_after_and_reads_work_when_redis_is_full(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    # Given a tenant, and then Redis at its memory limit
    before = await redis.config_get("maxmemory*")
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")
    try:
        # When the tenant creates a session, and lists its sessions
        created = await client.post("/v1/sessions", json={"name": "main"}, headers=tenant.headers)
        listed = await client.get("/v1/sessions", headers=tenant.headers)
    finally:
        await redis.config_set("maxmemory", before["maxmemory"])
        await redis.config_set("maxmemory-policy", before["maxmemory-policy"])
    # Then the write is refused with 503 store-full and Retry-After, and the read is answered
    assert created.status_code == 503, created.text
    assert created.json()["type"].endswith("store-full") and int(created.headers["retry-after"]) > 0
    assert listed.status_code == 200, listed.text
