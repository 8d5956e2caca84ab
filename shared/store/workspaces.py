"""Workspaces (tenants) in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.store.records import WorkspaceRecord


async def create_workspace(redis: Redis, record: WorkspaceRecord) -> WorkspaceRecord:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.workspace(record.id), record.model_dump_json())
        pipe.zadd(keys.workspaces_index(), {record.id: record.created_at_ms})
        await pipe.execute()
    return record


async def get_workspace(redis: Redis, workspace_id: str) -> WorkspaceRecord | None:
    raw = await redis.get(keys.workspace(workspace_id))
    return WorkspaceRecord.model_validate_json(raw) if raw else None


async def workspaces_exist(redis: Redis, workspace_ids: list[str]) -> dict[str, bool]:
    if not workspace_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for workspace_id in workspace_ids:
            pipe.exists(keys.workspace(workspace_id))
        results = await pipe.execute()
    return {w: bool(r) for w, r in zip(workspace_ids, results, strict=True)}
