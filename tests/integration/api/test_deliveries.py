"""Deliveries through the API: attempts, dead letters, retry one and retry all since a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from redis.asyncio import Redis

from shared import aws
from shared import redis_keys as keys
from shared.delivery import store
from shared.delivery.queue import DeliveryMessage, delivery_id_for
from tests.conftest import Queues
from tests.integration.api.conftest import Tenant, assert_problem

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def dead_letter(redis: Redis, tenant: Tenant, endpoint_id: str, n: int, at: datetime) -> str:
    """A delivery that failed 8 times and was dead-lettered at `at`, with its attempt log."""
    event_id = f"evt_{n:04d}"
    delivery_id = delivery_id_for(event_id, endpoint_id)
    event = {"id": event_id, "type": "message.received", "workspace_id": tenant.workspace_id, "session_id": "s"}
    message = DeliveryMessage(
        delivery_id=delivery_id, workspace_id=tenant.workspace_id, endpoint_id=endpoint_id, event=event, attempt=8
    )
    await store.put_dead_letter(
        redis,
        store.DeadLetterRecord(
            delivery_id=delivery_id, workspace_id=tenant.workspace_id, endpoint_id=endpoint_id, event_id=event_id,
            event_type="message.received", reason="http_500", last_status=500, attempts=8, dead_lettered_at=at,
            message=message,
        ),
    )  # fmt: skip
    attempt = store.AttemptRecord(
        delivery_id=delivery_id, workspace_id=tenant.workspace_id, endpoint_id=endpoint_id, event_id=event_id,
        attempt=8, at=at, url="https://h.example.com", status_code=500, latency_ms=12.5, outcome="dead_lettered",
    )  # fmt: skip
    await redis.rpush(keys.delivery_attempts(delivery_id), attempt.model_dump_json())
    await redis.sadd(keys.event_deliveries(event_id), delivery_id)
    return delivery_id


async def endpoint_of(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/v1/endpoints", json={"url": "https://h.example.com"}, headers=tenant.headers)
    return str(response.json()["id"])


async def test_dead_letters_and_attempts_are_listed(client: httpx.AsyncClient, tenant: Tenant, redis: Redis) -> None:
    endpoint_id = await endpoint_of(client, tenant)
    ids = [await dead_letter(redis, tenant, endpoint_id, n, T0 + timedelta(minutes=n)) for n in range(3)]
    # Pages of two, oldest first, and `since` cuts the older ones
    first = (await client.get("/v1/deliveries/dead-letters", params={"limit": 2}, headers=tenant.headers)).json()
    second = (
        await client.get(
            "/v1/deliveries/dead-letters", params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
        )
    ).json()
    assert [d["delivery_id"] for d in first["items"] + second["items"]] == ids and second["next_cursor"] is None
    since = (T0 + timedelta(minutes=1)).isoformat()
    recent = (await client.get("/v1/deliveries/dead-letters", params={"since": since}, headers=tenant.headers)).json()
    assert [d["delivery_id"] for d in recent["items"]] == ids[1:]
    # Attempts by delivery and by event
    by_delivery = await client.get("/v1/deliveries/attempts", params={"delivery_id": ids[0]}, headers=tenant.headers)
    by_event = await client.get("/v1/deliveries/attempts", params={"event_id": "evt_0000"}, headers=tenant.headers)
    assert [a["status_code"] for a in by_delivery.json()] == [500] and by_event.json() == by_delivery.json()
    elsewhere = await client.get(
        "/v1/deliveries/attempts", params={"event_id": "evt_0000", "endpoint_id": "ep_other"}, headers=tenant.headers
    )
    assert elsewhere.json() == []


async def test_attempt_and_dead_letter_queries_need_sane_parameters(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert_problem(await client.get("/v1/deliveries/attempts", headers=tenant.headers), 400)
    assert_problem(
        await client.get("/v1/deliveries/dead-letters", params={"cursor": "%%%"}, headers=tenant.headers), 400
    )
    assert_problem(
        await client.get("/v1/deliveries/attempts", params={"delivery_id": "dlv_nope"}, headers=tenant.headers), 404
    )


async def test_retry_one_and_retry_since_put_them_back_on_the_queue(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis, queues: Queues
) -> None:
    endpoint_id = await endpoint_of(client, tenant)
    ids = [await dead_letter(redis, tenant, endpoint_id, n, T0 + timedelta(minutes=n)) for n in range(3)]
    # When one is retried, then everything since the second's time
    one = await client.post(f"/v1/deliveries/{ids[0]}/retry", headers=tenant.headers)
    assert one.status_code == 202 and one.json()["attempt"] == 9
    batch = await client.post(
        "/v1/deliveries/retry", json={"since": (T0 + timedelta(minutes=1)).isoformat()}, headers=tenant.headers
    )
    # Then the three are on the deliveries queue and no longer dead-lettered
    assert batch.status_code == 202 and sorted(r["delivery_id"] for r in batch.json()["replayed"]) == ids[1:]
    bodies: list[dict[str, object]] = []
    while len(bodies) < 3:
        got = aws.sqs().receive_message(QueueUrl=queues.deliveries_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    assert sorted(str(b["delivery_id"]) for b in bodies) == sorted(ids)
    left = (await client.get("/v1/deliveries/dead-letters", headers=tenant.headers)).json()
    assert left["items"] == []
    # And a second retry of the same delivery is 404 (it is no longer dead-lettered)
    assert_problem(await client.post(f"/v1/deliveries/{ids[0]}/retry", headers=tenant.headers), 404)


async def test_retry_to_a_disabled_endpoint_is_409(client: httpx.AsyncClient, tenant: Tenant, redis: Redis) -> None:
    endpoint_id = await endpoint_of(client, tenant)
    delivery_id = await dead_letter(redis, tenant, endpoint_id, 7, T0)
    await client.patch(f"/v1/endpoints/{endpoint_id}", json={"enabled": False}, headers=tenant.headers)
    assert_problem(await client.post(f"/v1/deliveries/{delivery_id}/retry", headers=tenant.headers), 409)
