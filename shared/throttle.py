"""Admission of events: dedupe by event id plus a per-workspace, per-class token bucket, one Lua call each."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.scripts import run_many, script
from shared.settings import ThrottleLimit, get_settings


class Admission(IntEnum):
    ACCEPTED = 0
    DUPLICATE = 1
    THROTTLED = 2
    DROPPED = 3
    IN_FLIGHT = 4  # an earlier copy was accepted and is not confirmed yet


@dataclass(frozen=True)
class AdmissionRequest:
    event_id: str
    workspace_id: str
    event_class: str
    bypass: bool = False


@dataclass(frozen=True)
class AdmissionDecision:
    admission: Admission
    retry_after_seconds: int = 0


def limit_for(event_class: str) -> ThrottleLimit:
    limits = get_settings().throttle_limits
    return limits.get(event_class) or limits["default"]


async def admit(redis: Redis, requests: Sequence[AdmissionRequest]) -> list[AdmissionDecision]:
    """Decide every request in one round trip (a pipeline of one script call per event, in order)."""
    settings = get_settings()
    class_args: dict[str, list[int]] = {}
    calls = []
    for request in requests:
        args = class_args.get(request.event_class)
        if args is None:
            limit = limit_for(request.event_class)
            args = [limit.per_minute, limit.burst, settings.dedupe_pending_seconds, 0, int(limit.droppable)]
            class_args[request.event_class] = args
        bucket = keys.throttle_bucket(request.workspace_id, request.event_class)
        calls.append(([keys.event_seen(request.event_id), bucket], [*args[:3], int(request.bypass), args[4]]))
    raw = await run_many(redis, "admit_event", calls)
    return [AdmissionDecision(Admission(int(code)), math.ceil(int(wait) / 1000)) for code, wait in raw]


async def confirm(redis: Redis, event_ids: Sequence[str]) -> None:
    """Mark accepted events as enqueued: copies are duplicates for the dedupe window from now on."""
    if event_ids:
        # One script call for the batch: a pipeline of one SET per event cost ~19 us of CPU per event.
        await script(redis, "confirm_events")(
            keys=[keys.event_seen(event_id) for event_id in event_ids], args=[get_settings().dedupe_ttl_seconds]
        )


async def forget(redis: Redis, event_ids: Sequence[str]) -> None:
    """Undo dedupe marks, so a producer's retry of events we failed to enqueue is accepted again."""
    if event_ids:
        await redis.delete(*[keys.event_seen(event_id) for event_id in event_ids])
