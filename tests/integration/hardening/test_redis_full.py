"""Redis at its memory limit with `maxmemory-policy noeviction` (as infra/components/redis.py configures it):
writes are refused, ingest answers 503 with Retry-After, and nothing is lost (the producer's retry is accepted)."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.conftest import Queues
from tests.fixtures import load_event
from tests.integration.ingest.conftest import Tenant, drain, signed


async def test_ingest_answers_503_with_retry_after_when_redis_is_full_and_loses_nothing(
    client: httpx.AsyncClient, queues: Queues, tenant: Tenant, full_redis: Redis
) -> None:
    # Given Redis at its memory limit, refusing writes
    event = load_event("message_received")
    # When a producer posts a batch
    refused = await client.post("/v1/events", **signed([event]))
    # Then ingest answers 503 store-full with Retry-After, and nothing was queued
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("store-full")
    assert int(refused.headers["retry-after"]) > 0
    assert drain(queues.deliveries_url) == []
    # When memory is freed and the producer retries the same batch
    await full_redis.config_set("maxmemory", "0")
    retried = await client.post("/v1/events", **signed([event]))
    # Then the event is accepted (not a duplicate) and queued once
    assert [r["outcome"] for r in retried.json()["results"]] == ["accepted"]
    assert len(drain(queues.deliveries_url)) == 1
