"""Dead letters and attempts for the tenant API: list them, and send dead-lettered deliveries again.

Functions (all take a `redis.asyncio.Redis` and the caller's workspace id; nothing leaks across workspaces):

- `await replay_dead_letter(redis, workspace_id, delivery_id) -> ReplayResult`
      Re-send one dead-lettered delivery with a fresh attempt budget.
      Raises `DeliveryNotFound` (no such dead letter in this workspace: 404),
      `EndpointUnavailable` (its endpoint was deleted or is disabled: 409; re-enable it first),
      `shared.delivery.queue.EnqueueError` (SQS did not take it: 503, nothing changed).
- `await replay_dead_letters(redis, workspace_id, since, limit=1000) -> ReplayBatchResult`
      Re-send every dead letter of the workspace dead-lettered at or after `since` (oldest first, at most
      `limit`); those whose endpoint is unavailable or that SQS refused are listed in `skipped` / `failed`.
- `await list_dead_letters(redis, workspace_id, since=None, limit=50, cursor=None) -> DeadLetterPage`
      Oldest first from `since`; pass `page.next_cursor` back as `cursor` for the next page.
      Raises `InvalidCursor` (400) for a cursor this function did not make.
- `await list_attempts(redis, workspace_id, event_id=None, delivery_id=None) -> list[AttemptView]`
      Every logged HTTP attempt of one delivery, or of every delivery of one event (give exactly one id),
      oldest first. Raises `DeliveryNotFound` when a delivery id has no attempts in this workspace;
      an event id with none yet gives [].

A replayed delivery keeps its id and `webhook-id` (the event id), so receivers can still deduplicate.
The console's "Start DLQ redrive" needs none of this: the deliver function recognises redriven messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

from shared import aws
from shared.delivery import store
from shared.delivery.queue import DeliveryMessage, EnqueueError, send_batch
from shared.store.endpoints import get_endpoint

__all__ = [
    "AttemptView",
    "DeadLetterPage",
    "DeadLetterView",
    "DeliveryError",
    "DeliveryNotFound",
    "EndpointUnavailable",
    "InvalidCursor",
    "ReplayBatchResult",
    "ReplayResult",
    "fresh_budget",
    "list_attempts",
    "list_dead_letters",
    "replay_dead_letter",
    "replay_dead_letters",
]


class DeliveryError(Exception):
    """Base of the delivery domain errors the API maps to HTTP statuses."""


class DeliveryNotFound(DeliveryError):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"delivery {delivery_id!r} not found")
        self.delivery_id = delivery_id


class EndpointUnavailable(DeliveryError):
    def __init__(self, endpoint_id: str, reason: str) -> None:
        super().__init__(f"endpoint {endpoint_id!r} cannot receive deliveries: {reason}")
        self.endpoint_id = endpoint_id
        self.reason = reason


class InvalidCursor(DeliveryError, ValueError):
    pass


# Output models ---------------------------------------------------------------------------------------
class ReplayResult(BaseModel):
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int  # the number the next attempt will carry
    replayed_at: datetime


class ReplayBatchResult(BaseModel):
    replayed: list[ReplayResult]
    skipped: dict[str, str]  # delivery id -> why (endpoint deleted / disabled)
    failed: list[str]  # SQS did not take these; they stay dead-lettered


class DeadLetterView(BaseModel):
    delivery_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    reason: str
    last_status: int | None
    attempts: int
    first_attempt_at: datetime | None
    dead_lettered_at: datetime


class DeadLetterPage(BaseModel):
    items: list[DeadLetterView]
    next_cursor: str | None


class AttemptView(BaseModel):
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    at: datetime
    url: str
    status_code: int | None
    latency_ms: float
    response_body: str
    error: str | None
    outcome: str
    next_attempt_at: datetime | None


# Replay ----------------------------------------------------------------------------------------------
def fresh_budget(message: DeliveryMessage) -> DeliveryMessage:
    """The message to send again after a dead letter: the next attempt number, a new budget starting there."""
    next_attempt = message.attempt + 1
    return message.model_copy(
        update={
            "attempt": next_attempt,
            "budget_start": next_attempt,
            "dead_lettered_at": None,
            "enqueued_at": datetime.now(UTC),
        }
    )


async def _endpoint_problem(redis: Redis, workspace_id: str, endpoint_id: str) -> str | None:
    endpoint = await get_endpoint(redis, endpoint_id)
    if endpoint is None or endpoint.workspace_id != workspace_id:
        return "deleted"
    if not endpoint.enabled:
        return f"disabled ({endpoint.disabled_reason or 'no reason given'})"
    return None


async def _send(messages: list[DeliveryMessage]) -> set[str]:
    """Send to the live queue; return the delivery ids SQS did not take."""
    if not messages:
        return set()
    queue_url = await asyncio.to_thread(aws.deliveries_queue_url)
    try:
        await asyncio.to_thread(send_batch, queue_url, messages)
    except EnqueueError as exc:
        return set(exc.failed_ids)
    return set()


async def replay_dead_letter(redis: Redis, workspace_id: str, delivery_id: str) -> ReplayResult:
    record = await store.get_dead_letter(redis, delivery_id)
    if record is None or record.workspace_id != workspace_id:
        raise DeliveryNotFound(delivery_id)
    problem = await _endpoint_problem(redis, workspace_id, record.endpoint_id)
    if problem:
        raise EndpointUnavailable(record.endpoint_id, problem)
    message = fresh_budget(record.message)
    failed = await _send([message])
    if failed:
        raise EnqueueError(sorted(failed), "the deliveries queue did not take the replay")
    await store.remove_dead_letter(redis, workspace_id, delivery_id)
    return _result(message)


async def replay_dead_letters(redis: Redis, workspace_id: str, since: datetime, limit: int = 1000) -> ReplayBatchResult:
    entries = await store.dead_letter_page(redis, workspace_id, _ms(since), None, limit)
    records = await store.get_dead_letters(redis, [delivery_id for delivery_id, _ in entries])
    skipped: dict[str, str] = {}
    to_send: list[DeliveryMessage] = []
    problems: dict[str, str | None] = {}
    for record in records:
        if record.workspace_id != workspace_id:
            continue
        if record.endpoint_id not in problems:
            problems[record.endpoint_id] = await _endpoint_problem(redis, workspace_id, record.endpoint_id)
        problem = problems[record.endpoint_id]
        if problem:
            skipped[record.delivery_id] = f"endpoint {record.endpoint_id} {problem}"
        else:
            to_send.append(fresh_budget(record.message))
    failed = await _send(to_send)
    replayed = [m for m in to_send if m.delivery_id not in failed]
    for message in replayed:
        await store.remove_dead_letter(redis, workspace_id, message.delivery_id)
    return ReplayBatchResult(replayed=[_result(m) for m in replayed], skipped=skipped, failed=sorted(failed))


def _result(message: DeliveryMessage) -> ReplayResult:
    return ReplayResult(
        delivery_id=message.delivery_id,
        event_id=message.event_id,
        endpoint_id=message.endpoint_id,
        attempt=message.attempt,
        replayed_at=message.enqueued_at,
    )


# Listing -----------------------------------------------------------------------------------------------
def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _encode_cursor(score: int, delivery_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score}:{delivery_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, delivery_id = text.split(":", 1)
        return int(score), delivery_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc


async def list_dead_letters(
    redis: Redis, workspace_id: str, since: datetime | None = None, limit: int = 50, cursor: str | None = None
) -> DeadLetterPage:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    after = _decode_cursor(cursor) if cursor else None
    entries = await store.dead_letter_page(redis, workspace_id, _ms(since) if since else 0, after, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    records = {r.delivery_id: r for r in await store.get_dead_letters(redis, [d for d, _ in entries])}
    items = [
        DeadLetterView.model_validate(records[d].model_dump())
        for d, _ in entries
        if d in records and records[d].workspace_id == workspace_id
    ]
    next_cursor = _encode_cursor(entries[-1][1], entries[-1][0]) if more and entries else None
    return DeadLetterPage(items=items, next_cursor=next_cursor)


async def list_attempts(
    redis: Redis, workspace_id: str, event_id: str | None = None, delivery_id: str | None = None
) -> list[AttemptView]:
    if (event_id is None) == (delivery_id is None):
        raise ValueError("give exactly one of event_id or delivery_id")
    delivery_ids = [delivery_id] if delivery_id else await store.deliveries_of_event(redis, str(event_id))
    views: list[AttemptView] = []
    for one in delivery_ids:
        records = await store.attempts_of(redis, one)
        views.extend(AttemptView.model_validate(r.model_dump()) for r in records if r.workspace_id == workspace_id)
    if delivery_id and not views:
        raise DeliveryNotFound(delivery_id)
    views.sort(key=lambda v: (v.at, v.delivery_id, v.attempt))
    return views
