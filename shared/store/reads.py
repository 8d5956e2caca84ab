"""Reads through the worker that owns a session: the question goes on the session's command stream, the answer
comes back on a reply list the API waits on for a bounded time. Also the per-session cache and rate limit of
"is this number on WhatsApp" checks.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import ReadCommand, enqueue_command
from shared.scripts import script

REPLY_TTL_SECONDS = 30  # an answer nobody picked up (the asker timed out) goes away on its own
# Each BLPOP stays well inside the client's socket timeout (redis-py's default is 5 s): the wait is a few of them.
WAIT_SLICE_SECONDS = 2.0


async def ask(redis: Redis, command: ReadCommand, timeout_seconds: float) -> dict[str, Any] | None:
    """Queue the read for the owner and wait for its answer; None when none came in time."""
    await enqueue_command(redis, command)
    deadline = time.monotonic() + timeout_seconds
    while (remaining := deadline - time.monotonic()) > 0:
        popped = await redis.blpop([keys.read_reply(command.request_id)], timeout=min(WAIT_SLICE_SECONDS, remaining))
        if popped is not None:
            return dict(json.loads(popped[1]))
    return None


async def answer(redis: Redis, request_id: str, reply: dict[str, Any]) -> None:
    """The worker's side: push the answer where the asker waits, with a TTL in the same step."""
    key = keys.read_reply(request_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(key, json.dumps(reply, separators=(",", ":")))
        pipe.expire(key, REPLY_TTL_SECONDS)
        await pipe.execute()


async def owner_alive(redis: Redis, worker_id: str, max_age_ms: int) -> bool:
    """Whether the worker has sent a heartbeat within `max_age_ms` (a dead one's lease has lapsed by then)."""
    beat = await redis.zscore(keys.workers(), worker_id)
    return beat is not None and time.time() * 1000 - float(beat) <= max_age_ms


async def cached_contact(redis: Redis, session_id: str, phone: str) -> dict[str, Any] | None:
    raw = await redis.get(keys.session_contact(session_id, phone))
    return dict(json.loads(raw)) if raw else None


async def cache_contact(redis: Redis, session_id: str, phone: str, found: dict[str, Any], ttl_seconds: int) -> None:
    if ttl_seconds > 0:
        await redis.set(keys.session_contact(session_id, phone), json.dumps(found), ex=ttl_seconds)


async def take_contact_check(redis: Redis, session_id: str, per_minute: float, burst: int) -> int:
    """0 when the session may ask WhatsApp about one more number now, else milliseconds until it may."""
    waiting = await script(redis, "contact_check_take")(
        keys=[keys.session_contact_checks(session_id)], args=[per_minute, burst]
    )
    return int(waiting)


async def sent_media_ids(redis: Redis, session_id: str, wa_message_ids: list[str]) -> dict[str, str]:
    """The media ids of messages this gateway sent from an upload (`media.media_id`), by WhatsApp's message id:
    WhatsApp's id leads to our message record (set when it was sent), whose content names the upload."""
    if not wa_message_ids:
        return {}
    ours = await redis.mget([keys.wa_message(session_id, w) for w in wa_message_ids])
    pairs = [(w, str(o)) for w, o in zip(wa_message_ids, ours, strict=True) if o]
    if not pairs:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for _, ours_id in pairs:
            pipe.hget(keys.message(ours_id), "content")
        contents = await pipe.execute()
    found: dict[str, str] = {}
    for (wa_id, _), content in zip(pairs, contents, strict=True):
        media = json.loads(content).get("media") if content else None
        if isinstance(media, dict) and media.get("media_id"):
            found[wa_id] = str(media["media_id"])
    return found
