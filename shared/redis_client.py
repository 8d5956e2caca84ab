"""The Redis client factory: one asyncio client per event loop, created on first use."""

from __future__ import annotations

import asyncio
import weakref

from redis.asyncio import Redis

from shared.settings import get_settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()


def get_redis() -> Redis:
    """Return the client bound to the running loop (redis-py connections belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = Redis.from_url(get_settings().redis_url, decode_responses=True)
        _clients[loop] = client
    return client


async def close_redis() -> None:
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()
