"""The Redis client factory: one asyncio client per event loop, created on first use."""

from __future__ import annotations

import asyncio
import weakref

from aws_lambda_powertools.utilities import parameters
from redis.asyncio import BlockingConnectionPool, Redis

from shared.settings import get_settings

AUTH_TOKEN_CACHE_SECONDS = 3600
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()


def get_redis() -> Redis:
    """Return the client bound to the running loop (redis-py connections belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        settings = get_settings()
        # A blocking pool makes a burst of concurrent requests wait for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, decode_responses=True, password=redis_password(), max_connections=200, timeout=10
        )
        client = Redis(connection_pool=pool)
        _clients[loop] = client
    return client


def redis_password() -> str | None:
    """ElastiCache's AUTH token, from the Secrets Manager secret named in settings (none locally)."""
    name = get_settings().redis_auth_secret_name
    if not name:
        return None
    return str(parameters.get_secret(name, max_age=AUTH_TOKEN_CACHE_SECONDS))


async def close_redis() -> None:
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose(close_connection_pool=True)
