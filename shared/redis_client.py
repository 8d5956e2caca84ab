"""The Redis client factory: one asyncio client per event loop, created on first use."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import hiredis
from aws_lambda_powertools.utilities import parameters
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.connection import HiredisRespSerializer

from shared.settings import get_settings

AUTH_TOKEN_CACHE_SECONDS = 3600
MAX_CONNECTIONS = 200
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()
_serializer = HiredisRespSerializer()


class _HiredisPacking:
    """Pack commands with hiredis (C) instead of redis-py's Python packer, which asyncio connections
    use; on the ingest hot path (one EVALSHA per event) packing cost more than the scripts."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:  # the common case straight to C: str, bytes and numbers need no conversion
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return _serializer.pack(*args)  # multi-word names ("SCRIPT LOAD"), buffers, or the DataError


class FastConnection(_HiredisPacking, Connection):
    pass


class FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


def make_client(url: str, password: str | None = None, max_connections: int = MAX_CONNECTIONS) -> Redis:
    # A blocking pool makes a burst of concurrent requests wait for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        url, decode_responses=True, password=password, max_connections=max_connections, timeout=10
    )
    pool.connection_class = FastSSLConnection if url.startswith("rediss://") else FastConnection
    return Redis(connection_pool=pool)


def get_redis() -> Redis:
    """Return the client bound to the running loop (redis-py connections belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = make_client(get_settings().redis_url, password=redis_password())
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
