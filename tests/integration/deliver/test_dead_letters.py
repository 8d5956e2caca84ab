"""Dead-letter listing (pages, cursors, since) and bulk replay, as the tenant API calls them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from shared import aws
from shared.delivery import replay, store
from shared.delivery.queue import DeliveryMessage
from shared.store.endpoints import put_endpoint
from shared.store.records import EndpointRecord, EndpointSecret

BASE = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def _dead(redis: Redis, n: int, workspace_id: str = "ws_1", endpoint_id: str = "ep_1") -> str:
    delivery_id = f"dlv_{workspace_id}_{n}"
    at = BASE + timedelta(minutes=n)
    message = DeliveryMessage(
        delivery_id=delivery_id,
        workspace_id=workspace_id,
        endpoint_id=endpoint_id,
        event={"id": f"evt_{n}", "type": "message.received"},
        attempt=10,
        dead_lettered_at=at,
    )
    await store.put_dead_letter(
        redis,
        store.DeadLetterRecord(
            delivery_id=delivery_id, workspace_id=workspace_id, endpoint_id=endpoint_id, event_id=f"evt_{n}",
            event_type="message.received", reason="attempts_exhausted", last_status=500, attempts=10,
            dead_lettered_at=at, message=message,
        ),
    )  # fmt: skip
    return delivery_id


async def test_dead_letters_page_with_cursors_and_since(redis: Redis, env: Any) -> None:
    # Given five dead letters a minute apart in ws_1 and one in ws_2
    env.setenv("WAGW_DEAD_LETTER_TTL_SECONDS", str(10 * 365 * 24 * 3600))
    from tests.conftest import refresh_settings

    refresh_settings()
    ids = [await _dead(redis, n) for n in range(5)]
    await _dead(redis, 9, workspace_id="ws_2")
    # When ws_1 pages through them two at a time
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await replay.list_dead_letters(redis, "ws_1", limit=2, cursor=cursor)
        seen.extend(d.delivery_id for d in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    # Then it sees its own five, oldest first, in three pages
    assert seen == ids and pages == 3
    # And `since` starts the listing at that time
    later = await replay.list_dead_letters(redis, "ws_1", since=BASE + timedelta(minutes=3))
    assert [d.delivery_id for d in later.items] == ids[3:]


async def test_replay_since_sends_the_workspaces_dead_letters_back(redis: Redis, queues: Any, env: Any) -> None:
    env.setenv("WAGW_DEAD_LETTER_TTL_SECONDS", str(10 * 365 * 24 * 3600))
    from tests.conftest import refresh_settings

    refresh_settings()
    # Given an enabled endpoint with four dead letters, and another workspace's dead letter
    secret = EndpointSecret(secret="whsec_MTIz")
    await put_endpoint(
        redis, EndpointRecord(id="ep_1", workspace_id="ws_1", url="http://127.0.0.1:9/", secrets=[secret])
    )
    ids = [await _dead(redis, n) for n in range(4)]
    await _dead(redis, 7, workspace_id="ws_2", endpoint_id="ep_2")
    # When ws_1 replays everything since minute 1
    result = await replay.replay_dead_letters(redis, "ws_1", since=BASE + timedelta(minutes=1))
    # Then three went back on the live queue with a fresh budget, and only the oldest is still listed
    assert [r.delivery_id for r in result.replayed] == ids[1:]
    assert result.skipped == {} and result.failed == []
    bodies = []
    while True:
        got = aws.sqs().receive_message(QueueUrl=queues.deliveries_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not got.get("Messages"):
            break
        bodies.extend(json.loads(m["Body"]) for m in got["Messages"])
    assert sorted((b["delivery_id"], b["attempt"], b["budget_start"]) for b in bodies) == [(i, 11, 11) for i in ids[1:]]
    assert [d.delivery_id for d in (await replay.list_dead_letters(redis, "ws_1")).items] == ids[:1]
    assert len((await replay.list_dead_letters(redis, "ws_2")).items) == 1
