"""The durable outbox: a Redis stream per worker, posted to ingest in signed batches.

Events are appended by the fenced Lua write (`Ownership.emit`), so an event exists only if its session was still
ours. The poster reads the stream in order, posts up to 100 events per signed batch (shared.producer), and
deletes an entry only after a 2xx whose per-event outcome is final (accepted, duplicate, dropped, rejected).
Throttled events stay and are retried after their `retry_after`; network errors, 5xx and 429 back off
exponentially (honouring `Retry-After`). Ingest dedupes by event id, so posting an entry twice is harmless.

A dead worker's outbox is drained by any live worker: workers register in `keys.workers()` (a sorted set scored
by heartbeat); a worker whose heartbeat is older than `ORPHAN_AFTER_TTLS` lease TTLs is taken as dead, and
another worker holding `keys.outbox_drain_lock(dead)` drains its stream with this same poster, then
deregisters it once its stream and session set are empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.events import Event, parse_event
from shared.observability import logger
from shared.producer import IngestRefused, IngestUnavailable, Outcome, post_events

FINAL = {Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.DROPPED, Outcome.REJECTED}
BACKOFF_BASE_SECONDS = 0.5
AUTH_REFUSED = ("answered 401", "answered 403")
# One drain attempt (read, post with httpx's 15 s timeout, delete) that takes longer is abandoned and tried again
# (a repeat post is dropped at ingest): a Redis call begun during an outage must not hold the outbox up for good.
DRAIN_ATTEMPT_TIMEOUT_SECONDS = 60.0
# Woken by a new event after the stream ran dry, the poster waits a moment before posting, so the events of the
# next moment join the same batch: each batch costs the worker, ingest, SQS and deliver the same fixed work (a
# signed POST, the tenant checks, a SendMessageBatch, a ReceiveMessage), and posted one by one at a few messages a
# second that fixed work was most of the CPU per message (bench/e2e.py). The wait follows the worker's recent flow
# (OutboxPoster.linger_now): long enough to expect about two more events, at most this much, and none when not
# even one more is expected within it (a quiet worker's events go at once: waiting would only delay them). Under a
# steady load the poster never runs dry and never waits; an event's latency grows by at most this much.
LINGER_SECONDS = 0.2  # the default of settings.outbox_linger_seconds (WAGW_OUTBOX_LINGER_SECONDS)
LINGER_EXPECTED_EVENTS = 2.0
FLOW_WINDOW_SECONDS = 5.0  # the recent flow: events posted over this long
# An empty stream is looked at again this soon by a poster nothing wakes (drain_all, a dead worker's outbox)...
EMPTY_POLL_SECONDS = 0.2
# ...and this soon by the worker's own poster, which every write to its stream wakes (Session.emit, the spool's
# hand-over): the look is a backstop, not how events are found. At 0.2 s it was half of an idle worker's Redis
# commands (an XRANGE five times a second per worker, docs/benchmarks.md, Scale).
WOKEN_EMPTY_POLL_SECONDS = 2.0


@dataclass
class PostStats:
    batches: int = 0
    posted: int = 0
    failures: int = 0
    throttled: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class Unconfirmed:
    session_id: str
    fence: int
    event_type: str
    event_json: str


class UnconfirmedEvents:
    """Events written to this worker's outbox that ingest has not confirmed yet.

    Redis replicates asynchronously: a failover can lose the outbox entries of the last second, which no one would
    then post. Kept here (in memory, bounded) until the poster has a final outcome for them, they are written again
    after Redis comes back from any outage; those that were not lost are posted twice under the same event id and
    ingest drops the repeat.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self.events: dict[str, Unconfirmed] = {}  # insertion-ordered: oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.events)

    def written(self, event_id: str, session_id: str, fence: int, event_type: str, event_json: str) -> None:
        self.events[event_id] = Unconfirmed(session_id, fence, event_type, event_json)
        if len(self.events) > self.limit:
            del self.events[next(iter(self.events))]
            self.evicted += 1

    def confirmed(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self.events.pop(event_id, None)

    def take(self) -> list[Unconfirmed]:
        taken, self.events = list(self.events.values()), {}
        return taken


@dataclass
class OutboxPoster:
    redis: Redis
    stream: str
    dead_stream: str
    http: httpx.AsyncClient
    url: str | None = None
    batch_size: int = 100
    backoff_max: float = 60.0
    not_before: dict[str, float] = field(default_factory=dict)  # entry id -> monotonic time (throttled)
    failures: int = 0
    stats: PostStats = field(default_factory=PostStats)
    unconfirmed: UnconfirmedEvents | None = None
    linger: float = LINGER_SECONDS  # the longest wait for company (linger_now)
    ran_dry: bool = False  # the last drain_once found the stream empty
    posted_recently: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic time, events posted)

    def linger_now(self, now: float | None = None) -> float:
        """How long to wait for more events before posting the one that just woke the poster: about two more at
        the rate of the last few seconds, at most `linger`; nothing when fewer than one more is expected."""
        now = time.monotonic() if now is None else now
        while self.posted_recently and self.posted_recently[0][0] < now - FLOW_WINDOW_SECONDS:
            self.posted_recently.popleft()
        rate = sum(count for _, count in self.posted_recently) / FLOW_WINDOW_SECONDS
        if rate * self.linger < 1:
            return 0.0
        return min(self.linger, LINGER_EXPECTED_EVENTS / rate)

    async def depth(self) -> int:
        return int(await self.redis.xlen(self.stream))

    def backoff(self, retry_after: float | None) -> float:
        self.failures += 1
        delay = min(self.backoff_max, BACKOFF_BASE_SECONDS * 2 ** min(self.failures - 1, 10))
        delay *= random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, max(self.backoff_max, retry_after or 0))

    async def drain_once(self) -> float | None:
        """Post one batch of due entries. Returns how long to wait before the next call (None: go again now)."""
        entries: list[Any] = await self.redis.xrange(self.stream, "-", "+", count=self.batch_size * 4) or []
        self.ran_dry = not entries
        now = time.monotonic()
        due: list[tuple[str, Event]] = []
        for entry_id, fields in entries:
            if self.not_before.get(entry_id, 0) > now:
                continue
            try:
                due.append((entry_id, parse_event_json(fields["event"])))
            except (ValidationError, ValueError, KeyError):
                logger.error("unreadable outbox entry moved aside", extra={"entry": entry_id})
                await self._dead_letter(entry_id, fields.get("event", ""), "unreadable")
            if len(due) >= self.batch_size:
                break
        if not due:
            if not entries:
                return EMPTY_POLL_SECONDS
            return max(0.05, min(self.not_before.get(e, now) for e, _ in entries) - now)
        return await self._post(due)

    async def _post(self, due: list[tuple[str, Event]]) -> float | None:
        try:
            response = await post_events([event for _, event in due], client=self.http, url=self.url)
        except IngestUnavailable as exc:
            self.stats.failures += 1
            delay = self.backoff(exc.retry_after)
            logger.warning("ingest unavailable; backing off", extra={"error": str(exc), "delay": round(delay, 2)})
            return delay
        except IngestRefused as exc:
            self.stats.failures += 1
            if any(marker in str(exc) for marker in AUTH_REFUSED):
                logger.error("ingest refuses our signature; check producer keys", extra={"error": str(exc)})
                return self.backoff(self.backoff_max)
            if len(due) > 1:  # find the poison event: post the halves on their own
                half = len(due) // 2
                first = await self._post(due[:half])
                second = await self._post(due[half:])
                return max(first or 0, second or 0) or None
            entry_id, event = due[0]
            logger.error("ingest refused an event; dead-lettered", extra={"event_id": event.id, "error": str(exc)})
            await self._dead_letter(entry_id, event.model_dump_json(by_alias=True), str(exc)[:300])
            return None
        self.failures = 0
        self.stats.batches += 1
        outcomes = {r.id: r for r in response.results}
        done: list[str] = []
        now = time.monotonic()
        for entry_id, event in due:
            result = outcomes.get(event.id)
            if result is None:
                continue
            if result.outcome in FINAL:
                done.append(entry_id)
                self.not_before.pop(entry_id, None)
                if result.outcome is Outcome.REJECTED:
                    logger.warning("ingest rejected an event", extra={"event_id": event.id, "reason": result.reason})
            elif result.outcome is Outcome.THROTTLED:
                self.stats.throttled += 1
                self.not_before[entry_id] = now + float(result.retry_after or 1)
        if done:
            await self.redis.xdel(self.stream, *done)
            self.stats.posted += len(done)
            self.posted_recently.append((time.monotonic(), len(done)))
            if self.unconfirmed is not None:
                finished = set(done)
                self.unconfirmed.confirmed([event.id for entry_id, event in due if entry_id in finished])
        return None

    async def _dead_letter(self, entry_id: str, payload: str, reason: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_stream, {"event": payload, "reason": reason})
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()
        self.stats.dead_lettered += 1
        if self.unconfirmed is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.unconfirmed.confirmed([str(json.loads(payload)["id"])])

    async def run(self, wake: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            if wake is not None:
                wake.clear()  # before the read: a write that lands while it runs wakes the wait below at once
            self.ran_dry = False
            try:
                async with asyncio.timeout(DRAIN_ATTEMPT_TIMEOUT_SECONDS):
                    delay = await self.drain_once()
            except (OSError, ConnectionError) as exc:
                logger.warning("outbox drain failed", extra={"error": repr(exc)})
                delay = 1.0
            except Exception as exc:
                if type(exc).__module__.startswith("redis"):
                    logger.warning("outbox drain failed (redis)", extra={"error": repr(exc)})
                    delay = 1.0
                else:
                    raise
            if delay is None:
                continue
            if wake is not None:
                if self.ran_dry:
                    delay = WOKEN_EMPTY_POLL_SECONDS
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):  # (wait_for can swallow a cancel on 3.11)
                        await wake.wait()
                        linger = self.linger_now()
                        if linger > 0:
                            await asyncio.sleep(linger)
            else:
                await asyncio.sleep(delay)

    async def drain_all(self, deadline: float) -> bool:
        """Post until the stream is empty or the monotonic deadline passes; True when empty."""
        while time.monotonic() < deadline:
            if await self.depth() == 0:
                return True
            delay = await self.drain_once()
            if delay:
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        return await self.depth() == 0


def parse_event_json(raw: str) -> Event:
    return parse_event(json.loads(raw))


def poster_for(
    redis: Redis,
    worker_id: str,
    http: httpx.AsyncClient,
    url: str | None,
    batch: int,
    backoff_max: float,
    linger: float = LINGER_SECONDS,
) -> OutboxPoster:
    return OutboxPoster(
        redis=redis,
        stream=keys.outbox(worker_id),
        dead_stream=keys.outbox_dead(worker_id),
        http=http,
        url=url,
        batch_size=batch,
        backoff_max=backoff_max,
        linger=linger,
    )
