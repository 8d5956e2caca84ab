"""POST /v1/events: verified, validated, deduped, throttled batches fan out to the deliveries queue."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

from shared import redis_keys as keys
from shared.settings import DEV_PRODUCER_SECRET
from shared.signing import generate_secret
from shared.store import endpoints, messages, sessions
from shared.store.messages import MessageRecord, MessageStatus
from shared.store.records import EndpointRecord, EndpointSecret, SessionRecord
from tests.conftest import Queues
from tests.fixtures import load_event
from tests.integration.ingest.conftest import Tenant, drain, signed


async def test_accepted_events_fan_out_once_per_subscribed_endpoint(
    client: httpx.AsyncClient, queues: Queues, tenant: Tenant, redis: Redis
) -> None:
    # Given a second endpoint that only wants inbound messages
    await endpoints.put_endpoint(
        redis,
        EndpointRecord(
            id="ep_msgs",
            workspace_id=tenant.workspace_id,
            url="http://127.0.0.1:9/m",
            secrets=[EndpointSecret(secret=generate_secret())],
            event_types=["message.received"],
        ),
    )
    ready, inbound = load_event("session_status_ready"), load_event("message_received")
    # When a batch with a status change and an inbound message is posted
    response = await client.post("/v1/events", **signed([ready, inbound]))
    # Then both are accepted, and the queue holds 3 deliveries: 2 for the catch-all endpoint, 1 for the filtered one
    assert response.status_code == 202
    assert [r["outcome"] for r in response.json()["results"]] == ["accepted", "accepted"]
    queued = drain(queues.deliveries_url)
    assert sorted((d["event"]["type"], d["endpoint_id"]) for d in queued) == [
        ("message.received", "ep_demo"),
        ("message.received", "ep_msgs"),
        ("session.status", "ep_demo"),
    ]
    assert all(d["attempt"] == 1 and d["workspace_id"] == tenant.workspace_id for d in queued)
    # And the session's state is recorded
    stored = await sessions.get_session(redis, tenant.session_id)
    assert stored is not None and stored.status == "ready" and stored.phone == "62811801641"


async def test_replayed_event_is_a_duplicate_and_not_enqueued_again(client: httpx.AsyncClient, queues: Queues) -> None:
    event = load_event("message_received")
    first = await client.post("/v1/events", **signed([event]))
    # When the same event is posted again (a producer retry)
    second = await client.post("/v1/events", **signed([event]))
    # Then it is answered duplicate and only one delivery exists
    assert first.json()["results"][0]["outcome"] == "accepted"
    assert second.status_code == 202
    assert second.json()["results"][0]["outcome"] == "duplicate"
    assert len(drain(queues.deliveries_url)) == 1


@pytest.mark.parametrize(
    "tamper",
    ["no_signature", "wrong_key", "stale_timestamp", "future_timestamp", "body_changed"],
)
async def test_unsigned_or_badly_signed_batches_get_401_and_record_nothing(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, tamper: str
) -> None:
    event = load_event("message_received")
    request = signed([event])
    if tamper == "no_signature":
        del request["headers"]["webhook-signature"]
    elif tamper == "wrong_key":
        request = signed([event], secret=generate_secret())
    elif tamper == "stale_timestamp":
        request = signed([event], timestamp=int(time.time()) - 301)
    elif tamper == "future_timestamp":
        request = signed([event], timestamp=int(time.time()) + 301)
    else:
        request["content"] = request["content"].replace(b"Halo", b"Hola")
    # When the batch is posted
    response = await client.post("/v1/events", **request)
    # Then it is refused as a problem document and nothing is marked or queued
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await redis.exists(keys.event_seen(event["id"])) == 0
    assert drain(queues.deliveries_url) == []


async def test_reference_signer_is_accepted(client: httpx.AsyncClient) -> None:
    # Given a batch signed by the standardwebhooks package instead of our signer
    body = json.dumps({"events": [load_event("message_received")]})
    now = datetime.now(UTC)
    signature = Webhook(DEV_PRODUCER_SECRET).sign("batch_ref", now, body)
    headers = {
        "webhook-id": "batch_ref",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 202


async def test_rotated_producer_keys_both_verify(client: httpx.AsyncClient, env: pytest.MonkeyPatch) -> None:
    old, new = generate_secret(), generate_secret()
    env.setenv("WAGW_PRODUCER_KEYS", json.dumps({"workers-2026-10": old, "workers-2026-11": new}))
    from tests.conftest import refresh_settings

    refresh_settings()
    for secret in (old, new):
        response = await client.post("/v1/events", **signed([load_event("message_received")], secret=secret))
        assert response.status_code == 202
    dev_key = await client.post("/v1/events", **signed([load_event("message_received")]))
    assert dev_key.status_code == 401


async def test_invalid_json_is_422(client: httpx.AsyncClient, redis: Redis) -> None:
    body = b'{"events": [ {"id": '
    from shared.signing import sign

    headers = sign([DEV_PRODUCER_SECRET], "b", body).as_dict()
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["data"].update(status="asleep"), "events[1].data.status"),
        (lambda e: e.update(type="session.mood"), "events[1]"),
        (lambda e: e.pop("workspace_id"), "events[1].workspace_id"),
        (lambda e: e["data"].update(extra_field=1), "events[1].data.extra_field"),
    ],
)
async def test_schema_errors_are_422_naming_the_field_and_record_nothing(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, mutate, field: str
) -> None:
    good, bad = load_event("message_received"), load_event("session_status_ready")
    mutate(bad)
    response = await client.post("/v1/events", **signed([good, bad]))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)
    assert response.json()["type"] == "/problems/invalid-batch"
    assert response.json()["errors"][0]["field"] == field
    assert await redis.exists(keys.event_seen(good["id"])) == 0
    assert drain(queues.deliveries_url) == []


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    too_many = [load_event("typing") for _ in range(101)]
    response = await client.post("/v1/events", **signed(too_many))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("events:")
    empty = await client.post("/v1/events", **signed([]))
    assert empty.status_code == 422


async def test_body_over_256_kb_is_413(client: httpx.AsyncClient, redis: Redis) -> None:
    big = load_event("message_received")
    big["data"]["body"] = "x" * 60_000
    response = await client.post("/v1/events", **signed([dict(big, id=f"evt_big{i}") for i in range(5)]))
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert await redis.dbsize() > 0  # the tenant is there, but:
    assert not [k async for k in redis.scan_iter(match=keys.event_seen("*"))]


@pytest.mark.parametrize(("field", "value"), [("workspace_id", "ws_nobody"), ("session_id", "ses_nobody")])
async def test_unknown_workspace_or_session_is_422_with_the_id(
    client: httpx.AsyncClient, queues: Queues, field: str, value: str
) -> None:
    response = await client.post("/v1/events", **signed([load_event("message_received", **{field: value})]))
    assert response.status_code == 422
    assert value in response.json()["detail"]
    assert response.json()[field] == value
    assert drain(queues.deliveries_url) == []


async def test_session_of_another_workspace_is_unknown(client: httpx.AsyncClient, redis: Redis, tenant: Tenant) -> None:
    from shared.store import workspaces
    from shared.store.records import WorkspaceRecord

    await workspaces.create_workspace(redis, WorkspaceRecord(id="ws_other", name="Other"))
    event = load_event("message_received", workspace_id="ws_other")
    response = await client.post("/v1/events", **signed([event]))
    assert response.status_code == 422
    assert tenant.session_id in response.json()["detail"]


async def test_stale_event_is_rejected_alone(client: httpx.AsyncClient, queues: Queues) -> None:
    stale = load_event("message_received", occurred_at=(datetime.now(UTC) - timedelta(days=2)).isoformat())
    fresh = load_event("message_received")
    response = await client.post("/v1/events", **signed([stale, fresh]))
    outcomes = [(r["outcome"], r["reason"]) for r in response.json()["results"]]
    assert outcomes == [("rejected", "occurred_at is older than the dedupe window"), ("accepted", None)]
    assert len(drain(queues.deliveries_url)) == 1


async def queue_order_message(redis: Redis, tenant: Tenant, message_id: str) -> None:
    """A message the API queued; the canonical message.sent event names client_message_id order-1001."""
    await messages.create_message(
        redis,
        MessageRecord(
            id=message_id,
            workspace_id=tenant.workspace_id,
            session_id=tenant.session_id,
            to="6281234567890@c.us",
            text="hi",
            client_message_id="order-1001",
        ),
    )


async def test_message_events_advance_the_message_record(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant
) -> None:
    # Given a message the API queued
    await queue_order_message(redis, tenant, "msg_demo")
    # When the worker reports it sent, then WhatsApp reports it read
    await client.post("/v1/events", **signed([load_event("message_sent")]))
    sent = await messages.get_message(redis, "msg_demo")
    await client.post("/v1/events", **signed([load_event("message_ack")]))
    read = await messages.get_message(redis, "msg_demo")
    # Then the record follows, and an older ack never moves it back
    assert sent is not None and sent.status is MessageStatus.SENT
    assert read is not None and read.status is MessageStatus.READ
    delivered = load_event("message_ack")
    delivered["data"]["ack"] = 2
    await client.post("/v1/events", **signed([delivered]))
    still = await messages.get_message(redis, "msg_demo")
    assert still is not None and still.status is MessageStatus.READ


async def test_an_error_ack_fails_a_sent_message_and_a_later_receipt_proves_it_wrong(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant
) -> None:
    # Given a message the worker reported sent
    await queue_order_message(redis, tenant, "msg_demo")
    await client.post("/v1/events", **signed([load_event("message_sent")]))
    # When WhatsApp marks it failed (an error ack, reported as message.failed with WhatsApp's id only)
    failed = await client.post("/v1/events", **signed([load_event("message_failed_ack_error")]))
    after_error = await messages.get_message(redis, "msg_demo")
    # Then it is failed with the reason, though message.sent came first
    assert failed.status_code == 202
    assert after_error is not None and after_error.status is MessageStatus.FAILED
    assert after_error.error is not None and after_error.error.startswith("ack_error")
    # When a receipt shows the recipient got it after all, and then a peer ack (5) arrives
    delivered = load_event("message_ack")
    delivered["data"]["ack"] = 2
    peer = load_event("message_ack")
    peer["data"]["ack"] = 5
    response = await client.post("/v1/events", **signed([delivered, peer]))
    record = await messages.get_message(redis, "msg_demo")
    # Then it is delivered (every ack value is accepted), and a later error ack cannot undo that
    assert response.status_code == 202
    assert record is not None and record.status is MessageStatus.DELIVERED
    await client.post("/v1/events", **signed([load_event("message_failed_ack_error")]))
    record = await messages.get_message(redis, "msg_demo")
    assert record is not None and record.status is MessageStatus.DELIVERED


async def test_lid_group_and_phone_typed_events_are_accepted(client: httpx.AsyncClient) -> None:
    events = [
        load_event(n) for n in ("message_ack_group_receipt", "message_sent_from_phone", "message_received_from_lid")
    ]
    response = await client.post("/v1/events", **signed(events))
    assert response.status_code == 202, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["accepted"] * 3


async def test_ready_session_retires_older_sessions_of_the_phone_with_events(
    client: httpx.AsyncClient, queues: Queues, redis: Redis, tenant: Tenant
) -> None:
    # Given an older session for the same phone, stuck waiting for a QR scan
    await sessions.create_session(
        redis, SessionRecord(id="ses_old", workspace_id=tenant.workspace_id, phone="62811801641", status="qr")
    )
    # When the new session reports ready for that phone
    response = await client.post("/v1/events", **signed([load_event("session_status_ready")]))
    # Then the old one is retired and a session.status event says so
    assert response.status_code == 202
    old = await sessions.get_session(redis, "ses_old")
    assert old is not None and old.status == "retired"
    statuses = {(d["event"]["session_id"], d["event"]["data"]["status"]) for d in drain(queues.deliveries_url)}
    assert statuses == {(tenant.session_id, "ready"), ("ses_old", "retired")}


async def test_producer_keys_from_secrets_manager(
    client: httpx.AsyncClient, env: pytest.MonkeyPatch, aws_endpoint: str
) -> None:
    # Given the producer keys live in a Secrets Manager secret (as in AWS)
    from shared import aws
    from tests.conftest import refresh_settings

    secret = generate_secret()
    name = f"wagw/test/producers-{secret[-8:]}"
    aws.secrets_manager().create_secret(Name=name, SecretString=json.dumps({"workers": secret}))
    env.setenv("WAGW_PRODUCER_KEYS_SECRET_NAME", name)
    refresh_settings()
    try:
        # When a batch signed with that key arrives, and one signed with the local default
        from_secret = await client.post("/v1/events", **signed([load_event("message_received")], secret=secret))
        local_default = await client.post("/v1/events", **signed([load_event("message_received")]))
        # Then only the secret's key is trusted
        assert from_secret.status_code == 202
        assert local_default.status_code == 401
    finally:
        aws.secrets_manager().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


async def test_message_sent_without_our_id_is_matched_by_client_message_id(
    client: httpx.AsyncClient, redis: Redis, tenant: Tenant
) -> None:
    await queue_order_message(redis, tenant, "msg_cm")
    sent = load_event("message_sent")
    del sent["data"]["gateway_message_id"]
    await client.post("/v1/events", **signed([sent]))
    await client.post("/v1/events", **signed([load_event("message_ack")]))
    record = await messages.get_message(redis, "msg_cm")
    assert record is not None and record.status is MessageStatus.READ
    assert record.wa_message_id == sent["data"]["message_id"]
