"""Console redrive (StartMessageMoveTask), the per-endpoint circuit breaker, outbound URL safety."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import aws
from shared.delivery import replay, store
from shared.store.endpoints import put_endpoint
from tests.conftest import refresh_settings
from tests.integration.deliver.conftest import (
    Receiver,
    Reply,
    dlq_messages,
    drain,
    enqueue,
    make_endpoint,
    make_message,
)
from wagw_local.sqs_runner import SqsPoller

PUBLIC_ADDRESS = "93.184.215.14"  # a global unicast address (never connected to here)


def _arn(url: str) -> str:
    return aws.queue_arn(url)


async def test_console_redrive_gets_a_fresh_attempt_budget(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given a delivery that exhausted its three attempts and sits in the DLQ
    receiver.reply = lambda r: Reply(500)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    await drain(poller, lambda: len(dlq_messages(queues.dlq_url, wait=0)) == 1)
    assert len((await replay.list_dead_letters(redis, "ws_1")).items) == 1
    # When the receiver keeps failing and an operator starts a DLQ redrive (the console's StartMessageMoveTask)
    aws.sqs().start_message_move_task(SourceArn=_arn(queues.dlq_url), DestinationArn=_arn(queues.deliveries_url))
    # Then the redriven delivery gets three fresh attempts (4, 5, 6) before it is dead-lettered again
    await drain(poller, lambda: len(receiver.received) == 6, within=30)
    attempts = await store.attempts_of(redis, message.delivery_id)
    assert [a.attempt for a in attempts] == [1, 2, 3, 4, 5, 6]
    assert [a.outcome for a in attempts][3:] == ["retry_scheduled", "retry_scheduled", "dead_lettered"]
    (again,) = dlq_messages(queues.dlq_url, wait=2)
    body = json.loads(again["Body"])
    assert (body["attempt"], body["budget_start"]) == (6, 4)
    # And its dead-letter record is listed once, with the new attempt count
    page = await replay.list_dead_letters(redis, "ws_1")
    assert [(d.delivery_id, d.attempts) for d in page.items] == [(message.delivery_id, 6)]


async def test_circuit_breaker_pauses_a_failing_endpoint_without_burning_attempts(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, env: pytest.MonkeyPatch
) -> None:
    # Given a breaker that opens after 2 consecutive failures for a 3 s cool-down
    env.setenv("WAGW_RETRY_SCHEDULE_SECONDS", "[1, 1, 1, 1, 1, 1]")
    env.setenv("WAGW_RETRY_JITTER", "0")
    env.setenv("WAGW_BREAKER_FAILURE_THRESHOLD", "2")
    env.setenv("WAGW_BREAKER_COOLDOWN_SECONDS", "3")
    refresh_settings()
    receiver.reply = lambda r: Reply(500)
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    first, second, third = (make_message(endpoint, f"evt_0{i}") for i in (1, 2, 3))
    enqueue(queues.deliveries_url, first, second)
    # When two attempts fail, the breaker opens
    await drain(poller, lambda: len(receiver.received) == 2)
    assert "open_until" in await store.breaker_state(redis, endpoint.id)
    # Then a new delivery and the retries are deferred while it is open: no request reaches the endpoint
    enqueue(queues.deliveries_url, third)
    await drain(poller, lambda: poller.totals["received"] >= 5)
    assert len(receiver.received) == 2
    # When the endpoint recovers, one probe after the cool-down closes the breaker and everything is delivered
    receiver.reply = lambda r: Reply()
    await drain(poller, lambda: receiver.statuses().count(200) == 3, within=30)
    assert await store.breaker_state(redis, endpoint.id) == {}
    # And the deferred delivery used its first attempt: deferral burned none
    attempts = await store.attempts_of(redis, third.delivery_id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 200)]


async def test_unsafe_url_is_refused_at_delivery_time(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, staging: None
) -> None:
    # Given a non-dev environment and an endpoint whose https host resolves to loopback
    endpoint = make_endpoint(receiver).model_copy(update={"url": "https://localhost:9/hook"})
    await put_endpoint(redis, endpoint)
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled
    await drain(poller, lambda: poller.totals["deleted"] >= 1)
    # Then no request was made and it is dead-lettered at once as unsafe, with the reason logged
    assert receiver.received == []
    (dead,) = dlq_messages(queues.dlq_url)
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unsafe_url"
    (attempt,) = await store.attempts_of(redis, message.delivery_id)
    assert attempt.error is not None and "loopback" in attempt.error


async def test_a_dns_rebind_between_the_check_and_the_connect_is_refused(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, staging: None, env: pytest.MonkeyPatch
) -> None:
    # Given a non-dev environment, a real HTTP server on 127.0.0.1 as the attacker's target, and a hostile DNS
    # that answers rebind.test with a public address first (the pre-delivery check) and 127.0.0.1 after that
    answers: list[str] = []
    system_getaddrinfo = socket.getaddrinfo

    def hostile_dns(host: str | bytes | None, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("rebind.test", b"rebind.test"):
            return system_getaddrinfo(host, port, *args, **kwargs)
        answers.append("127.0.0.1" if answers else PUBLIC_ADDRESS)
        return system_getaddrinfo(answers[-1], port, *args, **kwargs)

    env.setattr(socket, "getaddrinfo", hostile_dns)
    port = receiver.server.server_address[1]
    endpoint = make_endpoint(receiver).model_copy(update={"url": f"https://rebind.test:{port}/hooks/ep_1"})
    await put_endpoint(redis, endpoint)
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    # When polled
    await drain(poller, lambda: poller.totals["deleted"] >= 1)
    # Then the check saw the public answer, the connection asked again and got loopback, and refused it:
    # not one TCP connection reached the local server
    assert answers == [PUBLIC_ADDRESS, "127.0.0.1"]
    assert receiver.connections == 0 and receiver.received == []
    # And the delivery is dead-lettered at once as unsafe (not retried as a connection error)
    (dead,) = dlq_messages(queues.dlq_url)
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unsafe_url"
    (attempt,) = await store.attempts_of(redis, message.delivery_id)
    assert attempt.outcome == "dead_lettered"
    assert attempt.error is not None and "loopback address (127.0.0.1)" in attempt.error


async def test_attempts_are_only_visible_to_their_workspace(
    redis: Redis, queues: Any, receiver: Receiver, poller: SqsPoller, fast_schedule: None
) -> None:
    # Given one delivered event in workspace ws_1
    endpoint = await put_endpoint(redis, make_endpoint(receiver))
    message = make_message(endpoint)
    enqueue(queues.deliveries_url, message)
    await drain(poller, lambda: len(receiver.received) == 1)
    # When another workspace asks for its attempts, by delivery or by event
    # Then it sees nothing, while the owner sees the attempt by event id
    with pytest.raises(replay.DeliveryNotFound):
        await replay.list_attempts(redis, "ws_other", delivery_id=message.delivery_id)
    assert await replay.list_attempts(redis, "ws_other", event_id="evt_01") == []
    assert [a.status_code for a in await replay.list_attempts(redis, "ws_1", event_id="evt_01")] == [200]
    with pytest.raises(replay.DeliveryNotFound):
        await replay.replay_dead_letter(redis, "ws_other", message.delivery_id)
