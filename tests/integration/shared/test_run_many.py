"""Batched script calls (`shared.scripts.run_many`) on a real Redis: order, reloads, errors, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import redis_keys as keys
from shared.redis_client import make_client
from shared.scripts import run_many


@pytest.fixture
async def fast_client(redis: Redis, redis_url: str) -> AsyncIterator[Redis]:
    """The client the apps use (hiredis packing, blocking pool), with a short socket timeout."""
    client = make_client(f"{redis_url}?socket_timeout=0.3")
    try:
        yield client
    finally:
        await client.aclose(close_connection_pool=True)


def claim(session_id: str, worker_id: str = "w1") -> tuple[list[str], list[object]]:
    prefix, suffix = keys.worker_sessions("\x00").split("\x00")
    return (
        [
            keys.unowned_sessions(),
            keys.session_lease(session_id),
            keys.session_fence(session_id),
            keys.session(session_id),
            keys.worker_sessions(worker_id),
        ],
        [session_id, worker_id, 60_000, prefix, suffix],
    )


async def sessions(redis: Redis, count: int) -> list[str]:
    ids = [f"ses_batch_{i}" for i in range(count)]
    for session_id in ids:
        await redis.hset(keys.session(session_id), mapping={"workspace_id": "ws_1"})
    return ids


async def test_replies_come_back_in_call_order(redis: Redis, fast_client: Redis) -> None:
    # Given 50 sessions of which every third was already claimed
    ids = await sessions(redis, 50)
    for session_id in ids[::3]:
        await redis.set(keys.session_lease(session_id), "someone-else")
    # When one batch claims them all
    replies = await run_many(fast_client, "worker_claim", [claim(s) for s in ids])
    # Then each reply belongs to its own call
    assert [int(r) for r in replies] == [0 if i % 3 == 0 else 1 for i in range(50)]


async def test_a_server_that_forgot_the_script_runs_each_call_exactly_once(redis: Redis, fast_client: Redis) -> None:
    # Given a server without the script (a restart, a failover)
    ids = await sessions(redis, 5)
    await redis.script_flush()
    # When a batch runs
    replies = await run_many(fast_client, "worker_claim", [claim(s) for s in ids])
    # Then every call ran once: fencing tokens were bumped once, not twice
    assert [int(r) for r in replies] == [1] * 5
    assert [await redis.get(keys.session_fence(s)) for s in ids] == ["1"] * 5


async def test_an_error_reply_is_raised_and_the_connection_stays_in_step(redis: Redis, fast_client: Redis) -> None:
    # Given a batch with one call the script rejects (a TTL that is not a number)
    ids = await sessions(redis, 3)
    bad_keys, bad_args = claim(ids[1])
    bad_args[2] = "not-a-number"
    # When it runs, Then the error is raised
    with pytest.raises(ResponseError):
        await run_many(fast_client, "worker_claim", [claim(ids[0]), (bad_keys, bad_args), claim(ids[2])])
    # And the next batches on the same pool read their own replies, not leftovers
    for _ in range(3):
        replies = await run_many(fast_client, "worker_claim", [claim(s, "w2") for s in ids])
        assert [int(r) for r in replies] == [0, int(await redis.get(keys.session_fence(ids[1]))), 0]
        assert await redis.get(keys.session_lease(ids[1])) == "w2"
        await redis.delete(keys.session_lease(ids[1]))


async def test_a_server_that_stops_answering_times_out_and_the_pool_recovers(
    redis: Redis, fast_client: Redis, redis_url: str
) -> None:
    # Given a server that stops answering for longer than the socket timeout (0.3 s)
    ids = await sessions(redis, 3)
    await run_many(fast_client, "worker_claim", [claim(ids[0])])  # a pooled connection exists
    await redis.execute_command("CLIENT", "PAUSE", "800", "ALL")
    # When a batch is sent, Then it fails with Redis's timeout error instead of waiting forever
    with pytest.raises(RedisTimeoutError):
        await run_many(fast_client, "worker_claim", [claim(s, "w3") for s in ids])
    # And once the server answers again, the next batch gets its own replies
    await asyncio.sleep(0.9)
    # (whether the paused batch ran is unknown, as with any timeout: only free sessions can be claimed now)
    for session_id in ids[1:]:
        await redis.delete(keys.session_lease(session_id))
    replies = await run_many(fast_client, "worker_claim", [claim(s, "w4") for s in ids])
    fences = [int(await redis.get(keys.session_fence(s)) or 0) for s in ids[1:]]
    assert [int(r) for r in replies] == [0, *fences] and all(fences)
