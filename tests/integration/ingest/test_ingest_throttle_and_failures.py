"""Throttling per event class, trusted producers, dropped low-value events, and SQS outages."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from functions.ingest.handler import handler
from shared import aws
from shared import redis_keys as keys
from shared.settings import get_settings
from shared.signing import generate_secret
from tests.conftest import Queues, refresh_settings
from tests.fixtures import load_aws_event, load_event
from tests.integration.ingest.conftest import Tenant, drain, signed
from wagw_local.lambda_runtime import LocalLambda

TIGHT_LIMITS = {
    "message": {"per_minute": 60, "burst": 3},
    "session_ready": {"per_minute": 50, "burst": 10},
    "session_qr": {"per_minute": 2, "burst": 2},
    "low_value": {"per_minute": 60, "burst": 1, "droppable": True},
    "default": {"per_minute": 100, "burst": 20},
}


@pytest.fixture
def tight_limits(env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_THROTTLE_LIMITS", json.dumps(TIGHT_LIMITS))
    refresh_settings()


async def test_qr_events_over_the_limit_are_throttled_with_retry_after(
    tight_limits: None, client: httpx.AsyncClient, queues: Queues, redis: Redis
) -> None:
    qrs = [load_event("session_qr") for _ in range(3)]
    # When three QR events arrive where the bucket holds two
    response = await client.post("/v1/events", **signed(qrs))
    results = response.json()["results"]
    # Then the third is throttled, told when to come back, and not marked as seen
    assert [r["outcome"] for r in results] == ["accepted", "accepted", "throttled"]
    assert 1 <= results[2]["retry_after"] <= 30
    assert int(response.headers["retry-after"]) == results[2]["retry_after"]
    assert len(drain(queues.deliveries_url)) == 2
    # And a retry of the throttled event is not taken for a duplicate once tokens are back
    await redis.delete(*[k async for k in redis.scan_iter(match="wagw:throttle:*")])
    retry = await client.post("/v1/events", **signed([qrs[2]]))
    assert retry.json()["results"][0]["outcome"] == "accepted"


async def test_classes_and_workspaces_have_separate_buckets(tight_limits: None, client: httpx.AsyncClient) -> None:
    messages = [load_event("message_received") for _ in range(3)]
    qrs = [load_event("session_qr") for _ in range(2)]
    response = await client.post("/v1/events", **signed(messages + qrs))
    assert {r["outcome"] for r in response.json()["results"]} == {"accepted"}


async def test_low_value_events_over_the_limit_are_dropped_not_retried(
    tight_limits: None, client: httpx.AsyncClient, queues: Queues
) -> None:
    response = await client.post("/v1/events", **signed([load_event("typing"), load_event("presence")]))
    assert [r["outcome"] for r in response.json()["results"]] == ["accepted", "dropped"]
    assert response.json()["results"][1]["retry_after"] is None
    assert len(drain(queues.deliveries_url)) == 1


async def test_trusted_producer_key_bypasses_the_throttle(
    tight_limits: None, client: httpx.AsyncClient, env: pytest.MonkeyPatch
) -> None:
    trusted = generate_secret()
    env.setenv("WAGW_PRODUCER_KEYS", json.dumps({"trusted-workers": trusted}))
    env.setenv("WAGW_TRUSTED_PRODUCERS", '["trusted-workers"]')
    refresh_settings()
    response = await client.post("/v1/events", **signed([load_event("session_qr") for _ in range(5)], secret=trusted))
    assert {r["outcome"] for r in response.json()["results"]} == {"accepted"}


def lambda_event(request: dict, source_ip: str) -> dict:
    event = load_aws_event("apigw_v2_post_events")
    event["headers"].update(request["headers"])
    event["body"] = request["content"].decode()
    event["requestContext"]["http"]["sourceIp"] = source_ip
    return event


@pytest.mark.parametrize(("source_ip", "expected_third"), [("10.20.0.7", "accepted"), ("203.0.113.9", "throttled")])
async def test_lambda_handler_with_api_gateway_event_trusts_only_the_request_context_ip(
    tight_limits: None,
    queues: Queues,
    tenant: Tenant,
    env: pytest.MonkeyPatch,
    source_ip: str,
    expected_third: str,
) -> None:
    # Given producers inside 10.20.0.0/16 are trusted
    env.setenv("WAGW_TRUSTED_CIDRS", '["10.20.0.0/16"]')
    refresh_settings()
    request = signed([load_event("session_qr") for _ in range(3)])
    # And a client header that claims to be inside the trusted range
    request["headers"]["x-forwarded-for"] = "10.20.0.1"
    # When Lambda receives the API Gateway v2 event
    response = await _invoke(lambda_event(request, source_ip))
    # Then only API Gateway's sourceIp decides
    assert response["statusCode"] == 202
    assert [r["outcome"] for r in json.loads(response["body"])["results"]][2] == expected_third


async def _invoke(event: dict) -> dict:
    runtime = LocalLambda("ingest", handler)
    try:
        response: dict = await runtime.invoke(event)
        return response
    finally:
        runtime.close()


async def test_sqs_outage_answers_503_and_a_retry_loses_nothing(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, env: pytest.MonkeyPatch
) -> None:
    event = load_event("message_received")
    # Given the deliveries queue is unreachable
    env.setenv("WAGW_DELIVERIES_QUEUE_URL", queues.deliveries_url + "-gone")
    refresh_settings()
    failed = await client.post("/v1/events", **signed([event]))
    # Then the batch is answered 503 with Retry-After, and the dedupe mark is undone
    assert failed.status_code == 503
    assert failed.headers["retry-after"]
    assert failed.json()["failed_events"] == [event["id"]]
    # When the queue is back and the producer retries
    env.delenv("WAGW_DELIVERIES_QUEUE_URL")
    refresh_settings()
    retried = await client.post("/v1/events", **signed([event]))
    # Then the event is accepted and enqueued exactly once
    assert retried.json()["results"][0]["outcome"] == "accepted"
    assert [d["event"]["id"] for d in drain(queues.deliveries_url)] == [event["id"]]
    assert aws.deliveries_queue_url() == queues.deliveries_url


async def test_a_batch_that_fails_after_admission_is_accepted_again_on_retry(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = load_event("message_received")
    # Given Redis fails while ingest applies the event's state, after the event was admitted
    from functions.ingest import state

    real_apply = state.apply_event

    async def failing_apply(*args: object, **kwargs: object) -> object:
        raise RedisConnectionError("connection reset by peer")

    monkeypatch.setattr(state, "apply_event", failing_apply)
    failed = await client.post("/v1/events", **signed([event]))
    # Then the batch is answered 503 with Retry-After, nothing was enqueued
    assert failed.status_code == 503
    assert failed.headers["retry-after"]
    assert failed.json()["type"] == "/problems/store-unavailable"
    assert drain(queues.deliveries_url) == []
    # When Redis is back and the producer retries the batch
    monkeypatch.setattr(state, "apply_event", real_apply)
    retried = await client.post("/v1/events", **signed([event]))
    # Then the event is accepted (not called a duplicate) and enqueued exactly once
    assert retried.json()["results"][0]["outcome"] == "accepted"
    assert [d["event"]["id"] for d in drain(queues.deliveries_url)] == [event["id"]]
    # And a further copy is a duplicate
    again = await client.post("/v1/events", **signed([event]))
    assert again.json()["results"][0]["outcome"] == "duplicate"


async def test_a_copy_arriving_while_the_first_is_unconfirmed_is_told_to_come_back(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, env: pytest.MonkeyPatch
) -> None:
    event = load_event("message_received")
    # Given an ingest that admitted the event and died before enqueueing it (its mark is still pending)
    env.setenv("WAGW_DEDUPE_PENDING_SECONDS", "2")
    refresh_settings()
    await redis.set(keys.event_seen(event["id"]), "pending", ex=2)
    # When the producer's retry arrives meanwhile
    early = await client.post("/v1/events", **signed([event]))
    # Then it is not called a duplicate: throttled, with a Retry-After within the pending window
    result = early.json()["results"][0]
    assert result["outcome"] == "throttled"
    assert 1 <= result["retry_after"] <= 2
    assert "still being processed" in result["reason"]
    assert drain(queues.deliveries_url) == []
    # When the retry comes back after the pending mark lapsed
    await asyncio.sleep(2.1)
    late = await client.post("/v1/events", **signed([event]))
    # Then the event is accepted and enqueued once
    assert late.json()["results"][0]["outcome"] == "accepted"
    assert [d["event"]["id"] for d in drain(queues.deliveries_url)] == [event["id"]]
    assert await redis.get(keys.event_seen(event["id"])) == "done"
    assert await redis.ttl(keys.event_seen(event["id"])) > get_settings().dedupe_pending_seconds  # the full window
