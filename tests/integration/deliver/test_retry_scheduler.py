"""Long delays go through the Redis schedule; the retry scheduler loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from functions.retry_scheduler import handler as scheduler_handler
from functions.retry_scheduler.logic import move_due
from shared import aws
from shared.delivery import store
from shared.store.endpoints import put_endpoint
from shared.store.records import EndpointRecord
from tests.conftest import refresh_settings
from tests.integration.deliver.conftest import Receiver, Reply, drain, enqueue, make_endpoint, make_message
from wagw_local.sqs_runner import LocalContext, SqsPoller

SCHEDULED_EVENT = json.loads((Path(__file__).parent / "fixtures" / "scheduled_event.json").read_text())


def _queued_delivery_ids(queue_url: str) -> list[str]:
    ids: list[str] = []
    while True:
        response = aws.sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = response.get("Messages", [])
        if not messages:
            return ids
        ids.extend(json.loads(m["Body"])["delivery_id"] for m in messages)


_ENDPOINT = EndpointRecord(id="ep_sched", workspace_id="ws_1", url="http://127.0.0.1:9/", secrets=[])


async def _schedule(redis: Redis, count: int, due_ms: int) -> list[str]:
    ids = []
    for i in range(count):
        message = make_message(_ENDPOINT, f"evt_s{i:04d}")
        await store.schedule_retry(redis, message, due_ms)
        ids.append(message.delivery_id)
    return ids


async def test_long_delay_waits_in_redis_and_the_scheduler_puts_it_back(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, env: pytest.MonkeyPatch
) -> None:
    # Given a schedule whose first retry (20 min) is longer than SQS's 15-minute DelaySeconds
    env.setenv("WAGW_RETRY_SCHEDULE_SECONDS", "[1200]")
    env.setenv("WAGW_RETRY_JITTER", "0")
    refresh_settings()
    receiver.reply = lambda r: Reply(503) if len(receiver.received) == 0 else Reply()
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When the first attempt fails
    await drain(poller, lambda: len(receiver.received) == 1)
    # Then the retry waits in the Redis schedule, not on the queue
    assert await store.retry_counts(redis) == (1, 0)
    assert (await store.claim_due(redis, 10)).messages == []  # not due yet
    # When the scheduler runs 20 minutes later
    later = store.now_ms() + 1201 * 1000
    result = await move_due(redis, at_ms=later)
    # Then the retry is back on the queue, the schedule is empty, and the delivery completes as attempt 2
    assert result.sent == 1
    assert await store.retry_counts(redis) == (0, 0)
    await drain(poller, lambda: len(receiver.received) == 2)
    attempts = await store.attempts_of(redis, message.delivery_id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 503), (2, 200)]


async def test_scheduler_handler_takes_an_eventbridge_scheduled_event(redis: Redis, queues: Any) -> None:
    # Given two retries already due
    ids = await _schedule(redis, 2, store.now_ms() - 1000)
    # When the handler is invoked with EventBridge's scheduled event (in a thread: it owns its loop)
    result = await asyncio.to_thread(scheduler_handler.handler, SCHEDULED_EVENT, LocalContext(timeout_seconds=60))
    # Then both are on the queue
    assert result["sent"] == 2
    assert sorted(_queued_delivery_ids(queues.deliveries_url)) == sorted(ids)


async def test_a_scheduler_dying_after_claiming_loses_nothing(redis: Redis, queues: Any) -> None:
    # Given three due retries, claimed by a scheduler that then dies before sending
    ids = await _schedule(redis, 3, store.now_ms() - 1000)
    dead_claim = await store.claim_due(redis, 10)
    assert len(dead_claim.messages) == 3
    # When another scheduler runs while the dead one's lease still holds
    # Then it sends nothing (the entries are in flight)
    assert (await move_due(redis)).sent == 0
    # When a scheduler runs after the lease lapsed
    after_lease = dead_claim.lease_until_ms + 1
    result = await move_due(redis, at_ms=after_lease)
    # Then all three are sent, once, and a late ack from the dead scheduler changes nothing
    assert result.sent == 3
    assert await store.ack_claimed(redis, dead_claim.lease_until_ms, ids) == 0
    assert sorted(_queued_delivery_ids(queues.deliveries_url)) == sorted(ids)
    assert await store.retry_counts(redis) == (0, 0)


async def test_two_schedulers_at_once_send_each_retry_once(redis: Redis, queues: Any, env: pytest.MonkeyPatch) -> None:
    # Given 120 due retries and schedulers that claim 10 at a time
    env.setenv("WAGW_RETRY_SCHEDULER_BATCH", "10")
    refresh_settings()
    ids = await _schedule(redis, 120, store.now_ms() - 1000)
    # When two schedulers run at the same time
    first, second = await asyncio.gather(move_due(redis), move_due(redis))
    # Then between them they sent each retry exactly once
    assert first.sent + second.sent == 120
    assert first.sent > 0 and second.sent > 0
    sent = Counter(_queued_delivery_ids(queues.deliveries_url))
    assert sorted(sent) == sorted(ids)
    assert set(sent.values()) == {1}
