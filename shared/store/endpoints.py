"""Tenant webhook endpoints in Redis (one JSON document per endpoint, a set per workspace)."""

from __future__ import annotations

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.store.records import EndpointRecord


async def put_endpoint(redis: Redis, record: EndpointRecord) -> EndpointRecord:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.endpoint(record.id), record.model_dump_json())
        pipe.sadd(keys.workspace_endpoints(record.workspace_id), record.id)
        await pipe.execute()
    return record


async def get_endpoint(redis: Redis, endpoint_id: str) -> EndpointRecord | None:
    raw = await redis.get(keys.endpoint(endpoint_id))
    return EndpointRecord.model_validate_json(raw) if raw else None


async def delete_endpoint(redis: Redis, record: EndpointRecord) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.endpoint(record.id))
        pipe.srem(keys.workspace_endpoints(record.workspace_id), record.id)
        await pipe.execute()


async def list_endpoints(redis: Redis, workspace_id: str) -> list[EndpointRecord]:
    ids = sorted(str(i) for i in await redis.smembers(keys.workspace_endpoints(workspace_id)))
    if not ids:
        return []
    raws = await redis.mget([keys.endpoint(i) for i in ids])
    return [EndpointRecord.model_validate_json(raw) for raw in raws if raw]


async def endpoints_by_workspace(redis: Redis, workspace_ids: set[str]) -> dict[str, list[EndpointRecord]]:
    return {workspace_id: await list_endpoints(redis, workspace_id) for workspace_id in sorted(workspace_ids)}
