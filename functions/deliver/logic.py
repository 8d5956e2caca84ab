"""One delivery attempt: sign, POST, then record the outcome and schedule what comes next.

Order of effects (so a crash anywhere loses nothing): the next step (retry message, DLQ message) is sent
first, the Redis state is advanced second, and the queue message is acknowledged last (by the caller).
A crash in between re-runs the attempt; the delivery state collapses the duplicate chains that can make.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit
from redis.asyncio import Redis

from functions.deliver import client
from shared import aws, signing
from shared.delivery import policy, store
from shared.delivery.policy import Reason, Verdict
from shared.delivery.queue import DeliveryMessage, send_batch, send_dead_letter
from shared.delivery.replay import fresh_budget
from shared.delivery.store import AttemptRecord, BeginVerdict, BreakerResult, BreakerState, DeadLetterRecord
from shared.delivery.urlsafety import UnsafeUrlError, check_url
from shared.observability import logger, metrics
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store.endpoints import get_endpoint, put_endpoint
from shared.store.records import EndpointRecord, now_ms
from shared.topology import MAX_SQS_DELAY_SECONDS


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    DEFERRED = "deferred"  # circuit breaker open: rescheduled, no attempt used
    DUPLICATE = "duplicate"  # an already delivered, stale or in-progress copy: acknowledged, nothing sent
    DROPPED = "dropped"  # endpoint deleted, or it no longer subscribes to the event type
    REQUEUED = "requeued"  # Redis did not answer: a copy is back on the queue for shortly, nothing was recorded


class PoisonMessage(ValueError):
    """The queue body is not a delivery: left to SQS's redrive policy (maxReceiveCount -> DLQ)."""


def parse_message(body: str) -> DeliveryMessage:
    try:
        return DeliveryMessage.model_validate_json(body)
    except ValueError as exc:
        raise PoisonMessage(f"not a delivery message: {str(exc)[:200]}") from exc


def webhook_body(message: DeliveryMessage) -> bytes:
    return json.dumps(message.event, separators=(",", ":"), ensure_ascii=False).encode()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Attempt:
    """Context of one attempt, passed to the outcome helpers."""

    redis: Redis
    message: DeliveryMessage
    token: str
    started: datetime
    url: str = ""

    def record(
        self,
        outcome: str,
        result: client.HttpResult | None = None,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> AttemptRecord:
        return AttemptRecord(
            delivery_id=self.message.delivery_id,
            workspace_id=self.message.workspace_id,
            endpoint_id=self.message.endpoint_id,
            event_id=self.message.event_id,
            attempt=self.message.attempt,
            at=self.started,
            url=self.url,
            status_code=result.status if result else None,
            latency_ms=result.latency_ms if result else 0.0,
            response_body=result.body if result else "",
            error=error or (result.error if result else None),
            outcome=outcome,
            next_attempt_at=next_at,
        )


async def deliver(message: DeliveryMessage, receive_count: int = 1) -> Outcome:
    """Handle one deliveries-queue message end to end; raises only when SQS or Redis fail (then SQS retries)."""
    redis = get_redis()
    if message.dead_lettered_at is not None:
        # Seen on the live queue with dead_lettered_at set: the console redrove it from the DLQ.
        logger.info("redriven delivery", extra={"delivery_id": message.delivery_id, "attempt": message.attempt})
        await store.remove_dead_letter(redis, message.workspace_id, message.delivery_id)
        message = fresh_budget(message)
        metrics.add_metric(name="Redriven", unit=MetricUnit.Count, value=1)
    started = _now()
    if message.first_attempt_at is None:
        message = message.model_copy(update={"first_attempt_at": started})
    begun = await store.begin_attempt(redis, message)
    if begun.verdict is not BeginVerdict.GO:
        logger.info(
            "duplicate delivery message acknowledged",
            extra={"delivery_id": message.delivery_id, "attempt": message.attempt, "verdict": begun.verdict.value,
                   "receive_count": receive_count},
        )  # fmt: skip
        metrics.add_metric(name="DuplicateMessages", unit=MetricUnit.Count, value=1)
        return Outcome.DUPLICATE
    attempt = _Attempt(redis, message, begun.token, started)
    endpoint = EndpointRecord.model_validate_json(begun.endpoint_json) if begun.endpoint_json else None
    if endpoint is None or endpoint.workspace_id != message.workspace_id:
        await store.finish_attempt(redis, message, begun.token, "dropped", None, BreakerResult.NONE)
        logger.warning("endpoint gone; delivery dropped", extra={"delivery_id": message.delivery_id})
        return Outcome.DROPPED
    attempt.url = endpoint.url
    if not endpoint.enabled:
        return await _dead_letter(attempt, Reason.ENDPOINT_DISABLED, None, http_attempted=False)
    if endpoint.event_types and message.event_type not in endpoint.event_types:
        await store.finish_attempt(redis, message, begun.token, "dropped", None, BreakerResult.NONE)
        return Outcome.DROPPED
    if begun.breaker is BreakerState.OPEN:
        return await _defer(attempt, begun.breaker_wait_ms / 1000)
    try:
        await check_url(endpoint.url)
    except UnsafeUrlError as exc:
        return await _dead_letter(attempt, Reason.UNSAFE_URL, None, http_attempted=True, error=str(exc))
    secrets = endpoint.active_secrets()
    if not secrets:
        return await _dead_letter(attempt, Reason.REJECTED, None, http_attempted=False, error="no active secret")
    body = webhook_body(message)
    headers = signing.sign(secrets, message.event_id, body).as_dict() | {"content-type": "application/json"}
    try:
        result = await client.post(endpoint.url, body, headers)
    except UnsafeUrlError as exc:  # the connect-time lookup answered differently (DNS rebinding): nothing was sent
        return await _dead_letter(attempt, Reason.UNSAFE_URL, None, http_attempted=True, error=str(exc))
    metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Milliseconds, value=result.latency_ms)
    verdict = policy.classify(result.status)
    breaker = BreakerResult.FAILURE if verdict is Verdict.RETRY else BreakerResult.SUCCESS
    if verdict is Verdict.DELIVERED:
        await store.finish_attempt(
            redis, message, begun.token, "delivered", attempt.record("delivered", result), breaker
        )
        metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)
        return Outcome.DELIVERED
    if verdict is Verdict.DISABLE:
        await _disable_endpoint(redis, endpoint.id, f"410 Gone at {started.isoformat()}")
        return await _dead_letter(attempt, Reason.GONE, result, http_attempted=True, breaker=breaker)
    if verdict is Verdict.DEAD:
        return await _dead_letter(attempt, Reason.REJECTED, result, http_attempted=True, breaker=breaker)
    return await _retry(attempt, result, breaker)


async def _retry(attempt: _Attempt, result: client.HttpResult, breaker: BreakerResult) -> Outcome:
    settings = get_settings()
    message = attempt.message
    delay = policy.next_delay(
        message.attempt,
        message.budget_start,
        settings.retry_schedule_seconds,
        settings.retry_jitter,
        retry_after=result.retry_after,
        retry_after_max=settings.retry_after_max_seconds,
    )
    if delay is None:
        return await _dead_letter(attempt, Reason.EXHAUSTED, result, http_attempted=True, breaker=breaker)
    next_message = message.model_copy(update={"attempt": message.attempt + 1, "enqueued_at": _now()})
    next_at = await _send_later(attempt.redis, next_message, delay)
    record = attempt.record("retry_scheduled", result, next_at=next_at)
    await store.finish_attempt(attempt.redis, message, attempt.token, "pending", record, breaker)
    metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=1)
    return Outcome.RETRY_SCHEDULED


async def _defer(attempt: _Attempt, wait_seconds: float) -> Outcome:
    """The endpoint's breaker is open: send the same attempt again after the cool-down (spread out)."""
    cooldown = get_settings().breaker_cooldown_seconds
    delay = max(1.0, wait_seconds) + random.uniform(0, cooldown * 0.5)
    await _send_later(attempt.redis, attempt.message.model_copy(update={"enqueued_at": _now()}), delay)
    await store.finish_attempt(attempt.redis, attempt.message, attempt.token, "deferred", None, BreakerResult.NONE)
    metrics.add_metric(name="Deferred", unit=MetricUnit.Count, value=1)
    return Outcome.DEFERRED


async def _send_later(redis: Redis, message: DeliveryMessage, delay: float) -> datetime:
    due = _now() + timedelta(seconds=delay)
    if policy.goes_on_queue(delay):
        await _enqueue(message, round(delay))
    else:
        await store.schedule_retry(redis, message, int(due.timestamp() * 1000))
    return due


async def _enqueue(message: DeliveryMessage, delay_seconds: int) -> None:
    """Onto the deliveries queue, due in `delay_seconds` (SQS's delay: at most 15 minutes)."""
    queue_url = await asyncio.to_thread(aws.deliveries_queue_url)
    await asyncio.to_thread(send_batch, queue_url, [message], delay_seconds)


async def _dead_letter(
    attempt: _Attempt,
    reason: Reason,
    result: client.HttpResult | None,
    *,
    http_attempted: bool,
    breaker: BreakerResult = BreakerResult.NONE,
    error: str | None = None,
) -> Outcome:
    message = attempt.message
    dead_at = _now()
    dead = message.model_copy(update={"dead_lettered_at": dead_at})
    attempts = message.attempt if http_attempted else message.attempt - 1
    status = result.status if result else None
    dlq_url = await asyncio.to_thread(aws.deliveries_dlq_url)
    await asyncio.to_thread(send_dead_letter, dlq_url, dead, reason.value, status, attempts)
    await store.put_dead_letter(
        attempt.redis,
        DeadLetterRecord(
            delivery_id=message.delivery_id,
            workspace_id=message.workspace_id,
            endpoint_id=message.endpoint_id,
            event_id=message.event_id,
            event_type=message.event_type,
            reason=reason.value,
            last_status=status,
            attempts=attempts,
            first_attempt_at=message.first_attempt_at,
            dead_lettered_at=dead_at,
            message=dead,
        ),
    )
    record = attempt.record("dead_lettered", result, error=error or reason.value) if http_attempted else None
    await store.finish_attempt(attempt.redis, message, attempt.token, "dead", record, breaker)
    logger.info("delivery dead-lettered", extra={"delivery_id": message.delivery_id, "reason": reason.value})
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
    return Outcome.DEAD_LETTERED


async def _disable_endpoint(redis: Redis, endpoint_id: str, reason: str) -> None:
    endpoint = await get_endpoint(redis, endpoint_id)
    if endpoint is None or not endpoint.enabled:
        return
    disabled = endpoint.model_copy(update={"enabled": False, "disabled_reason": reason, "updated_at_ms": now_ms()})
    await put_endpoint(redis, disabled)
    logger.warning("endpoint disabled", extra={"endpoint_id": endpoint_id, "reason": reason})
    metrics.add_metric(name="EndpointsDisabled", unit=MetricUnit.Count, value=1)


OUTAGE_REQUEUE_MAX_SECONDS = 300


def outage_requeue_delay(message: DeliveryMessage) -> int:
    """Back again once the attempt's lease has surely lapsed (a copy arriving while it holds would be taken for a
    duplicate and acknowledged), then backing off, never past SQS's delay cap."""
    floor = store.lease_ms() / 1000 + 5
    backoff = 15 * 2 ** min(message.outage_requeues, 8)
    return round(min(MAX_SQS_DELAY_SECONDS, max(floor, min(OUTAGE_REQUEUE_MAX_SECONDS, backoff))))


async def requeue_after_outage(message: DeliveryMessage, error: Exception) -> Outcome:
    """Redis did not answer: put a copy back on the queue for soon and let the caller acknowledge this one.

    Left to the queue's visibility timeout, the message would come back only after 6 minutes and count a receive
    toward the DLQ's maxReceiveCount, so a long Redis outage would dead-letter deliveries nobody attempted.
    If SQS refuses the copy too, this raises and the visibility timeout remains the fallback."""
    delay = outage_requeue_delay(message)
    await _enqueue(message.model_copy(update={"outage_requeues": message.outage_requeues + 1}), delay)
    logger.warning(
        "Redis unavailable; delivery requeued",
        extra={"delivery_id": message.delivery_id, "delay_seconds": delay, "error": repr(error)},
    )
    metrics.add_metric(name="RequeuedForOutage", unit=MetricUnit.Count, value=1)
    return Outcome.REQUEUED
