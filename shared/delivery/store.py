"""Delivery data in Redis: per-delivery state and attempt log, dead-letter records, the long-delay retry
schedule, and each endpoint's circuit breaker. Multi-step changes are Lua scripts (shared/scripts/).

- state (`delivery_state`): highest attempt begun, last attempt finished, status, a lease. It collapses
  duplicate queue messages (SQS is at-least-once; a crash after a send re-sends) to one chain of attempts.
- attempt log (`delivery_attempts`, a list with a TTL): what the API shows the tenant.
- dead letters (`dead_letter` record + `workspace_dead_letters` index by time): what the API lists and replays.
- retry schedule (`retry_schedule` due set, `retry_inflight` claimed set, `retry_payload`): delays > 15 min.
- breaker (`endpoint_breaker`): consecutive failures, open-until, the probe's token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.delivery.queue import DeliveryMessage
from shared.scripts import script
from shared.settings import get_settings
from shared.store.records import now_ms

ATTEMPT_LOG_MAX = 100
RESPONSE_LOG_BYTES = 1024


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# Stored models -------------------------------------------------------------------------------------
class AttemptRecord(BaseModel):
    """One HTTP attempt, as logged for the tenant (kept `attempt_log_ttl_seconds`)."""

    delivery_id: str
    workspace_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    at: datetime
    url: str
    status_code: int | None = None
    latency_ms: float
    response_body: str = Field(default="", description="first 1 KB of the response, decoded leniently")
    error: str | None = None  # timeout | connection error text | unsafe URL reason
    outcome: str  # delivered | retry_scheduled | dead_lettered | endpoint_disabled
    next_attempt_at: datetime | None = None


class DeadLetterRecord(BaseModel):
    """A dead-lettered delivery: everything needed to list it and to send it again."""

    delivery_id: str
    workspace_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    reason: str
    last_status: int | None = None
    attempts: int
    first_attempt_at: datetime | None = None
    dead_lettered_at: datetime
    message: DeliveryMessage


# Attempts: begin / finish --------------------------------------------------------------------------
class BeginVerdict(StrEnum):
    GO = "go"
    DELIVERED = "delivered"
    STALE = "stale"
    BUSY = "busy"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    PROBE = "probe"


class BreakerResult(StrEnum):
    SUCCESS = "success"  # the endpoint answered (2xx, or a 4xx: it is alive)
    FAILURE = "failure"  # timeout, connection error, 408/429/3xx/5xx
    NONE = "none"  # no request was made


@dataclass(frozen=True)
class Begun:
    verdict: BeginVerdict
    token: str
    endpoint_json: str | None = None
    breaker: BreakerState = BreakerState.CLOSED
    breaker_wait_ms: int = 0


def lease_ms() -> int:
    return int((get_settings().delivery_timeout_seconds + 30) * 1000)


async def begin_attempt(redis: Redis, message: DeliveryMessage, at_ms: int | None = None) -> Begun:
    settings = get_settings()
    token = uuid.uuid4().hex
    raw = await script(redis, "delivery_begin")(
        keys=[keys.delivery_state(message.delivery_id), keys.endpoint(message.endpoint_id),
              keys.endpoint_breaker(message.endpoint_id)],
        args=[message.attempt, now_ms() if at_ms is None else at_ms, lease_ms(), token,
              settings.attempt_log_ttl_seconds, message.workspace_id, message.endpoint_id, message.event_id,
              int(settings.breaker_cooldown_seconds * 1000)],
    )  # fmt: skip
    verdict, endpoint_json, breaker, wait = (str(v) for v in raw)
    return Begun(
        verdict=BeginVerdict(verdict),
        token=token,
        endpoint_json=endpoint_json or None,
        breaker=BreakerState(breaker) if breaker else BreakerState.CLOSED,
        breaker_wait_ms=int(wait),
    )


async def finish_attempt(
    redis: Redis,
    message: DeliveryMessage,
    token: str,
    outcome: str,
    attempt_record: AttemptRecord | None,
    breaker: BreakerResult,
    at_ms: int | None = None,
) -> bool:
    """Record the attempt; outcome is delivered | pending | dead | deferred (deferred: not an attempt)."""
    settings = get_settings()
    state_ttl = settings.dead_letter_ttl_seconds if outcome == "dead" else settings.attempt_log_ttl_seconds
    result = await script(redis, "delivery_finish")(
        keys=[keys.delivery_state(message.delivery_id), keys.delivery_attempts(message.delivery_id),
              keys.event_deliveries(message.event_id), keys.endpoint_breaker(message.endpoint_id)],
        args=[token, message.attempt, outcome, attempt_record.model_dump_json() if attempt_record else "",
              max(state_ttl, settings.attempt_log_ttl_seconds), settings.attempt_log_ttl_seconds, ATTEMPT_LOG_MAX,
              breaker.value, now_ms() if at_ms is None else at_ms, settings.breaker_failure_threshold,
              int(settings.breaker_cooldown_seconds * 1000), message.delivery_id,
              max(60, int(settings.breaker_cooldown_seconds * 10))],
    )  # fmt: skip
    return bool(int(result))


async def attempts_of(redis: Redis, delivery_id: str) -> list[AttemptRecord]:
    raws = await redis.lrange(keys.delivery_attempts(delivery_id), 0, -1)
    return [AttemptRecord.model_validate_json(raw) for raw in raws]


async def deliveries_of_event(redis: Redis, event_id: str) -> list[str]:
    return sorted(str(d) for d in await redis.smembers(keys.event_deliveries(event_id)))


async def delivery_state(redis: Redis, delivery_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (await redis.hgetall(keys.delivery_state(delivery_id))).items()}


async def breaker_state(redis: Redis, endpoint_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (await redis.hgetall(keys.endpoint_breaker(endpoint_id))).items()}


# Dead letters --------------------------------------------------------------------------------------
async def put_dead_letter(redis: Redis, record: DeadLetterRecord) -> None:
    ttl = get_settings().dead_letter_ttl_seconds
    index = keys.workspace_dead_letters(record.workspace_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.dead_letter(record.delivery_id), record.model_dump_json(), ex=ttl)
        pipe.zadd(index, {record.delivery_id: int(record.dead_lettered_at.timestamp() * 1000)})
        pipe.zremrangebyscore(index, "-inf", now_ms() - ttl * 1000)
        pipe.expire(index, ttl)
        await pipe.execute()


async def get_dead_letter(redis: Redis, delivery_id: str) -> DeadLetterRecord | None:
    raw = await redis.get(keys.dead_letter(delivery_id))
    return DeadLetterRecord.model_validate_json(raw) if raw else None


async def remove_dead_letter(redis: Redis, workspace_id: str, delivery_id: str) -> None:
    """Forget a dead letter that was sent again (replayed by the API or redriven from the console)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.dead_letter(delivery_id))
        pipe.zrem(keys.workspace_dead_letters(workspace_id), delivery_id)
        await pipe.execute()


async def dead_letter_page(
    redis: Redis, workspace_id: str, since_ms: int, after: tuple[int, str] | None, limit: int
) -> list[tuple[str, int]]:
    """(delivery id, dead-lettered ms) in time order from `since_ms`, strictly after the cursor `after`."""
    index = keys.workspace_dead_letters(workspace_id)
    low = max(since_ms, after[0]) if after else since_ms
    found: list[tuple[str, int]] = []
    offset = 0
    while len(found) < limit:
        chunk = await redis.zrangebyscore(index, low, "+inf", start=offset, num=limit + 1, withscores=True)
        if not chunk:
            break
        offset += len(chunk)
        for pair in chunk:
            entry = (str(pair[0]), int(pair[1]))
            if after and (entry[1], entry[0]) <= (after[0], after[1]):
                continue
            found.append(entry)
            if len(found) == limit:
                break
    return found


async def get_dead_letters(redis: Redis, delivery_ids: Sequence[str]) -> list[DeadLetterRecord]:
    if not delivery_ids:
        return []
    raws = await redis.mget([keys.dead_letter(d) for d in delivery_ids])
    return [DeadLetterRecord.model_validate_json(raw) for raw in raws if raw]


# Long-delay retry schedule ---------------------------------------------------------------------------
async def schedule_retry(redis: Redis, message: DeliveryMessage, due_ms: int) -> None:
    """Keep `message` until `due_ms`; the retry scheduler puts it back on the queue then."""
    ttl = max(0, (due_ms - now_ms()) // 1000) + 7 * 24 * 3600
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.retry_payload(message.delivery_id), message.model_dump_json(), ex=ttl)
        pipe.zadd(keys.retry_schedule(), {message.delivery_id: due_ms})
        await pipe.execute()


@dataclass(frozen=True)
class Claim:
    lease_until_ms: int
    messages: list[DeliveryMessage]
    missing: list[str]  # claimed ids whose payload had gone (acknowledged without sending)


async def claim_due(redis: Redis, limit: int, at_ms: int | None = None) -> Claim:
    """Move up to `limit` due retries into the in-flight set under a lease; return their messages."""
    now = now_ms() if at_ms is None else at_ms
    lease_until = now + get_settings().retry_claim_lease_seconds * 1000
    flat = await script(redis, "retry_claim")(
        keys=[keys.retry_schedule(), keys.retry_inflight()],
        args=[now, lease_until, limit, keys.retry_payload("")],
    )
    messages: list[DeliveryMessage] = []
    missing: list[str] = []
    for i in range(0, len(flat), 2):
        delivery_id, payload = str(flat[i]), str(flat[i + 1])
        if payload:
            messages.append(DeliveryMessage.model_validate_json(payload))
        else:
            missing.append(delivery_id)
    return Claim(lease_until, messages, missing)


async def ack_claimed(redis: Redis, lease_until_ms: int, delivery_ids: Sequence[str]) -> int:
    if not delivery_ids:
        return 0
    acked = await script(redis, "retry_ack")(
        keys=[keys.retry_schedule(), keys.retry_inflight()],
        args=[lease_until_ms, keys.retry_payload(""), *delivery_ids],
    )
    return int(acked)


async def retry_counts(redis: Redis) -> tuple[int, int]:
    """(due or waiting, in flight) entries in the long-delay schedule."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.retry_schedule())
        pipe.zcard(keys.retry_inflight())
        due, inflight = await pipe.execute()
    return int(due), int(inflight)
