"""Workspaces (tenants) in Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import WatchError

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


async def update_workspace(redis: Redis, workspace_id: str, **changes: object) -> WorkspaceRecord | None:
    """Change fields of the workspace in one optimistic transaction (retried if another writer raced it)."""
    key = keys.workspace(workspace_id)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if not raw:
                    await pipe.reset()
                    return None
                record = WorkspaceRecord.model_validate_json(raw).model_copy(update=changes)
                pipe.multi()
                pipe.set(key, record.model_dump_json())
                await pipe.execute()
                return record
            except WatchError:
                continue


async def workspaces_exist(redis: Redis, workspace_ids: list[str]) -> dict[str, bool]:
    if not workspace_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for workspace_id in workspace_ids:
            pipe.exists(keys.workspace(workspace_id))
        results = await pipe.execute()
    return {w: bool(r) for w, r in zip(workspace_ids, results, strict=True)}
