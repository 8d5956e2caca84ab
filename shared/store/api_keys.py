"""Workspace API keys in Redis: the key's hash -> record (JSON), and a hash per workspace of key id -> key hash.

A rotated key keeps working until its `expires_at_ms` (Redis expires the record then too); a revoked
key is gone at once.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.store.records import ApiKeyRecord, now_ms


async def put_api_key(redis: Redis, record: ApiKeyRecord) -> ApiKeyRecord:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.api_key(record.key_hash), record.model_dump_json())
        if record.expires_at_ms is not None:
            pipe.pexpireat(keys.api_key(record.key_hash), record.expires_at_ms)
        pipe.hset(keys.workspace_api_keys(record.workspace_id), record.id, record.key_hash)
        await pipe.execute()
    return record


async def api_key_by_hash(redis: Redis, key_hash: str) -> ApiKeyRecord | None:
    raw = await redis.get(keys.api_key(key_hash))
    if not raw:
        return None
    record = ApiKeyRecord.model_validate_json(raw)
    return record if record.live() else None


async def list_api_keys(redis: Redis, workspace_id: str) -> list[ApiKeyRecord]:
    """Live keys of the workspace, oldest first; entries whose record has expired are dropped."""
    index = {str(k): str(v) for k, v in (await redis.hgetall(keys.workspace_api_keys(workspace_id))).items()}
    if not index:
        return []
    key_ids = sorted(index)
    raws = await redis.mget([keys.api_key(index[i]) for i in key_ids])
    live: list[ApiKeyRecord] = []
    gone: list[str] = []
    moment = now_ms()
    for key_id, raw in zip(key_ids, raws, strict=True):
        record = ApiKeyRecord.model_validate_json(raw) if raw else None
        if record is not None and record.live(moment):
            live.append(record)
        else:
            gone.append(key_id)
    if gone:
        await redis.hdel(keys.workspace_api_keys(workspace_id), *gone)
    return live


async def get_api_key(redis: Redis, workspace_id: str, key_id: str) -> ApiKeyRecord | None:
    key_hash = await redis.hget(keys.workspace_api_keys(workspace_id), key_id)
    return await api_key_by_hash(redis, str(key_hash)) if key_hash else None


async def expire_api_key(redis: Redis, record: ApiKeyRecord, at_ms: int) -> ApiKeyRecord:
    """Keep the key working until `at_ms` (a rotation's grace window); at or before now, revoke it."""
    if at_ms <= now_ms():
        await revoke_api_key(redis, record)
        return record.model_copy(update={"expires_at_ms": at_ms})
    updated = record.model_copy(update={"expires_at_ms": at_ms})
    return await put_api_key(redis, updated)


async def revoke_api_key(redis: Redis, record: ApiKeyRecord) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.api_key(record.key_hash))
        pipe.hdel(keys.workspace_api_keys(record.workspace_id), record.id)
        await pipe.execute()
