"""Deliveries of one workspace: attempts, dead letters, replays (through shared.delivery.replay)."""

from __future__ import annotations

from datetime import datetime

from functions.api import errors
from shared.delivery import replay
from shared.redis_client import get_redis


async def attempts(
    workspace_id: str, *, event_id: str | None, delivery_id: str | None, endpoint_id: str | None
) -> list[replay.AttemptView]:
    if (event_id is None) == (delivery_id is None):
        raise errors.InvalidRequest("give exactly one of event_id or delivery_id")
    views = await replay.list_attempts(get_redis(), workspace_id, event_id=event_id, delivery_id=delivery_id)
    return [v for v in views if endpoint_id is None or v.endpoint_id == endpoint_id]


async def dead_letters(
    workspace_id: str, *, since: datetime | None, limit: int, cursor: str | None
) -> replay.DeadLetterPage:
    return await replay.list_dead_letters(get_redis(), workspace_id, since=since, limit=limit, cursor=cursor)


async def retry_one(workspace_id: str, delivery_id: str) -> replay.ReplayResult:
    return await replay.replay_dead_letter(get_redis(), workspace_id, delivery_id)


async def retry_since(workspace_id: str, since: datetime, limit: int) -> replay.ReplayBatchResult:
    return await replay.replay_dead_letters(get_redis(), workspace_id, since, limit=limit)
