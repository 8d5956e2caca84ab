"""The deliver handler against a real receiver, real LocalStack SQS and real Redis."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from shared import aws
from shared.delivery import replay, store
from shared.store.endpoints import get_endpoint, put_endpoint
from tests.conftest import refresh_settings
from tests.integration.deliver.conftest import (
    Received,
    Receiver,
    Reply,
    dlq_messages,
    drain,
    enqueue,
    make_endpoint,
    make_message,
)
from wagw_local.sqs_runner import SqsPoller


async def test_delivers_signed_post_verified_by_every_active_secret(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given an endpoint with two active secrets (rotation) and one delivery on the queue
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When the poller feeds it to the handler
    results = await drain(poller, lambda: len(receiver.received) == 1)
    # Then the receiver got one POST whose signature verifies with each secret, webhook-id = event id
    got = receiver.received[0]
    assert got.verified_by == [0, 1]
    assert got.headers["webhook-id"] == "evt_01"
    assert json.loads(got.body) == message.event
    assert got.path == "/hooks/ep_1"
    # And the record was deleted from the queue, and the attempt logged with status, latency and response
    assert sum(r.deleted for r in results) == 1
    attempts = await replay.list_attempts(redis, "ws_1", delivery_id=message.delivery_id)
    assert [(a.attempt, a.status_code, a.outcome, a.response_body) for a in attempts] == [(1, 200, "delivered", "ok")]
    assert attempts[0].latency_ms > 0


async def test_retries_a_500_then_delivers_with_the_same_webhook_id(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that fails the first request with a 500 and a long body
    receiver.reply = lambda r: Reply(500, b"x" * 5000) if len(receiver.received) == 0 else Reply()
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When the queue is polled until the receiver answered 200
    await drain(poller, lambda: 200 in receiver.statuses())
    # Then both attempts carried the same webhook-id, and both are logged (response cut to 1 KB)
    assert [r.headers["webhook-id"] for r in receiver.received] == ["evt_01", "evt_01"]
    attempts = await store.attempts_of(redis, message.delivery_id)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry_scheduled"),
        (2, 200, "delivered"),
    ]
    assert len(attempts[0].response_body) == 1024
    assert attempts[0].next_attempt_at is not None


async def test_timeout_is_retried(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that stalls past the 1 s timeout on the first request
    receiver.reply = lambda r: Reply(stall_seconds=1.5) if len(receiver.received) == 0 else Reply()
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    enqueue(queues.deliveries_url, make_message(endpoint))
    # When polled until delivered
    await drain(poller, lambda: len(receiver.received) >= 2)
    # Then the first attempt is logged as a timeout and the second delivered
    attempts = await store.attempts_of(redis, make_message(endpoint).delivery_id)
    assert [(a.status_code, a.error, a.outcome) for a in attempts] == [
        (None, "timeout", "retry_scheduled"),
        (200, None, "delivered"),
    ]


async def test_non_retryable_4xx_goes_to_the_dlq_at_once_and_can_be_replayed(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that rejects with 422
    receiver.reply = lambda r: Reply(422, b"bad")
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled
    await drain(poller, lambda: len(receiver.received) == 1)
    # Then it is on the DLQ with its reason, status, attempt count and times as attributes
    (dead,) = dlq_messages(queues.dlq_url)
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["reason"] == "rejected"
    assert attributes["last_status"] == "422"
    assert attributes["attempts"] == "1"
    assert attributes["first_attempt_at"] != "none" and attributes["dead_lettered_at"] != "none"
    assert json.loads(dead["Body"])["dead_lettered_at"] is not None
    # And the API can list it
    page = await replay.list_dead_letters(redis, "ws_1")
    assert [(d.delivery_id, d.reason, d.last_status) for d in page.items] == [(message.delivery_id, "rejected", 422)]
    # When the tenant fixes the receiver and replays it
    receiver.reply = lambda r: Reply()
    result = await replay.replay_dead_letter(redis, "ws_1", message.delivery_id)
    await drain(poller, lambda: 200 in receiver.statuses())
    # Then it is delivered as attempt 2, and no longer listed as dead
    assert result.attempt == 2
    assert (await replay.list_dead_letters(redis, "ws_1")).items == []
    state = await store.delivery_state(redis, message.delivery_id)
    assert state["status"] == "delivered" and state["finished"] == "2"


async def test_gone_disables_the_endpoint(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that answers 410 Gone
    receiver.reply = lambda r: Reply(410)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    enqueue(queues.deliveries_url, make_message(endpoint, "evt_01"))
    # When polled
    await drain(poller, lambda: len(receiver.received) == 1)
    # Then the endpoint is disabled with a reason, and the delivery is dead-lettered as "gone"
    stored = await get_endpoint(redis, endpoint.id)
    assert stored is not None and stored.enabled is False and "410" in (stored.disabled_reason or "")
    (dead,) = dlq_messages(queues.dlq_url)
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "gone"
    # And a later delivery to it is dead-lettered without any request
    enqueue(queues.deliveries_url, make_message(endpoint, "evt_02"))
    await drain(poller, lambda: len(dlq_messages(queues.dlq_url, wait=0)) == 2)
    assert len(receiver.received) == 1


async def test_exhausted_attempts_go_to_the_dlq(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that always answers 503 and a schedule of two retries
    receiver.reply = lambda r: Reply(503)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled until three attempts were made
    await drain(poller, lambda: len(dlq_messages(queues.dlq_url, wait=0)) == 1)
    # Then exactly three requests were made and the DLQ says why
    assert receiver.statuses() == [503, 503, 503]
    (dead,) = dlq_messages(queues.dlq_url)
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "attempts_exhausted"
    assert dead["MessageAttributes"]["attempts"]["StringValue"] == "3"


async def test_duplicate_queue_messages_deliver_once(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given the same delivery on the queue twice (SQS is at-least-once)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message, message)
    # When both are consumed
    await drain(poller, lambda: len(receiver.received) >= 1)
    await drain(poller, lambda: poller.totals["deleted"] >= 2)
    # Then the receiver saw one request
    assert len(receiver.received) == 1


async def test_poison_record_is_left_for_sqs_redrive(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a valid delivery and a body that is not a delivery, in one batch
    from shared import aws

    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    enqueue(queues.deliveries_url, make_message(endpoint))
    aws.sqs().send_message(QueueUrl=queues.deliveries_url, MessageBody="{not json")
    # When polled until both were received
    results = await drain(poller, lambda: poller.totals["received"] >= 2)
    # Then the good one was delivered and deleted, the poison one reported as a batch item failure
    assert sum(r.deleted for r in results) == 1
    assert sum(r.failed for r in results) == 1
    assert [r.verified_by for r in receiver.received] == [[0, 1]]
    # And the poller counted its invocations and its empty receives apart
    assert poller.totals["batches"] == sum(1 for r in results if r.received)
    assert poller.totals["empty"] == sum(1 for r in results if not r.received)


def _statuses(received: list[Received]) -> list[int]:
    return [r.status for r in received]


async def test_retry_after_longer_than_the_schedule_is_honoured(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that first answers 429 with Retry-After: 3 (the schedule says 1 s)
    receiver.reply = lambda r: Reply(429, headers={"Retry-After": "3"}) if len(receiver.received) == 0 else Reply()
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled until delivered
    await drain(poller, lambda: 200 in receiver.statuses())
    # Then the second attempt was scheduled 3 s after the first, not 1 s
    first, second = await store.attempts_of(redis, message.delivery_id)
    assert first.status_code == 429 and first.next_attempt_at is not None
    assert 2.9 <= (first.next_attempt_at - first.at).total_seconds() <= 4.5
    assert second.at >= first.next_attempt_at - timedelta(seconds=1)


async def test_redirects_are_not_followed_and_count_as_failures(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a receiver that first redirects elsewhere
    receiver.reply = lambda r: (
        Reply(302, headers={"Location": "/elsewhere"}) if len(receiver.received) == 0 else Reply()
    )
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled until delivered
    await drain(poller, lambda: 200 in receiver.statuses())
    # Then the redirect was never followed: both requests went to the endpoint's own URL, the 302 was retried
    assert [r.path for r in receiver.received] == ["/hooks/ep_1", "/hooks/ep_1"]
    attempts = await store.attempts_of(redis, message.delivery_id)
    assert [(a.status_code, a.outcome) for a in attempts] == [(302, "retry_scheduled"), (200, "delivered")]


async def test_an_expired_secret_no_longer_signs(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given an endpoint whose first secret expired (rotation finished) and whose second is active
    endpoint = make_endpoint(receiver)
    endpoint.secrets[0].expires_at_ms = 1
    await put_endpoint(redis, endpoint)
    enqueue(queues.deliveries_url, make_message(endpoint))
    # When delivered
    await drain(poller, lambda: len(receiver.received) == 1)
    # Then only the active secret's signature is present
    (got,) = receiver.received
    assert got.verified_by == [1]
    assert len(got.headers["webhook-signature"].split()) == 1


async def test_a_crash_after_scheduling_the_retry_neither_loses_nor_forks_the_delivery(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None, env: Any
) -> None:
    # Given a receiver that fails once, a queue that shows failed records again after 2 s,
    # and a deliver function that crashes right after it has sent the retry (before recording the attempt)
    from shared import aws

    aws.sqs().set_queue_attributes(QueueUrl=queues.deliveries_url, Attributes={"VisibilityTimeout": "2"})
    receiver.reply = lambda r: Reply(500) if len(receiver.received) == 0 else Reply()
    real_finish = store.finish_attempt
    calls = {"n": 0}

    async def crash_once(*args: Any, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("crash between the retry send and the state update")
        return await real_finish(*args, **kwargs)

    env.setattr(store, "finish_attempt", crash_once)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled until the crashed record came back and was dealt with
    results = await drain(poller, lambda: 200 in receiver.statuses() and poller.totals["deleted"] >= 2)
    await drain(poller, lambda: poller.totals["received"] >= 3, within=10)
    # Then the crashed record was reported failed and came back, but the receiver saw just two requests:
    # the failed attempt and the delivered retry (the returning copy of attempt 1 is recognised as stale)
    assert sum(r.failed for r in results) >= 1
    assert receiver.statuses() == [500, 200]
    state = await store.delivery_state(redis, message.delivery_id)
    assert state["status"] == "delivered" and state["finished"] == "2"


async def test_a_delivery_that_meets_a_redis_outage_is_put_back_for_shortly_not_left_to_the_visibility_timeout(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None, env: Any
) -> None:
    # Given a delivery on the queue and a Redis that does not answer
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    enqueue(queues.deliveries_url, make_message(endpoint))
    env.setenv("WAGW_REDIS_URL", "redis://127.0.0.1:1/0")
    refresh_settings()
    # When the handler takes it
    results = await drain(poller, lambda: poller.totals["received"] >= 1)
    # Then nothing was sent, the record is acknowledged (no receive counted toward the DLQ) and a copy waits
    # on the queue, delayed, instead of the original coming back after the 6-minute visibility timeout
    assert receiver.received == []
    assert sum(r.deleted for r in results) == 1
    assert sum(r.failed for r in results) == 0
    counts = aws.sqs().get_queue_attributes(
        QueueUrl=queues.deliveries_url,
        AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {"ApproximateNumberOfMessagesDelayed": "1", "ApproximateNumberOfMessagesNotVisible": "0"}
