"""Fixtures of the hardening tests: the ingest fixtures (a seeded tenant, an in-process ingest client) and a
Redis at its memory limit."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.integration.ingest.conftest import client, tenant

__all__ = ["client", "full_redis", "tenant"]


@pytest.fixture
async def full_redis(redis: Redis) -> AsyncIterator[Redis]:
    """The suite's redis-server with a memory limit below what it already uses; the limit is lifted afterwards."""
    before = await redis.config_get("maxmemory*")
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")
    try:
        yield redis
    finally:
        await redis.config_set("maxmemory", before["maxmemory"])
        await redis.config_set("maxmemory-policy", before["maxmemory-policy"])
