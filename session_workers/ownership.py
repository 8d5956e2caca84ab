"""Leases with fencing tokens: who drives a session, and the check every state write goes through.

Contract shared with cleanup: a live owner holds `keys.session_lease(sid)` (value = worker id, PX TTL renewed by
the heartbeat); the session hash field `owner` names it; `keys.unowned_sessions()` holds sessions waiting for a
worker; `keys.worker_sessions(worker_id)` is the worker's set. `keys.session_fence(sid)` is a counter bumped on
every claim: a worker's writes carry the token it got and are refused (Lua) once anyone claimed after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from session_workers.spool import Spooled
from shared import redis_keys as keys
from shared.commands import COMMANDS_GROUP
from shared.events import SessionStatus
from shared.scripts import run_many, script

TERMINAL_STATUSES = (SessionStatus.LOGGED_OUT, SessionStatus.FAILED, SessionStatus.STOPPED, SessionStatus.RETIRED)
MARKER_TTL_SECONDS = 30 * 24 * 3600

# Redis is away (down, paused, failing over, loading its persistence, a replica not yet promoted): the write may or
# may not have happened, and it can be tried again later. (Builtin TimeoutError is an OSError.)
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

_WS_PREFIX, _WS_SUFFIX = keys.worker_sessions("\x00").split("\x00")


class FencedOff(Exception):
    """This worker no longer owns the session: the write was refused and the session must stop here."""


@dataclass
class Lease:
    session_id: str
    fence: int
    # Local monotonic deadline: the lease cannot have lapsed in Redis before this (set from the send time).
    valid_until: float

    def expired(self, margin_s: float, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.valid_until - margin_s


class Ownership:
    def __init__(self, redis: Redis, worker_id: str, ttl_ms: int) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.ttl_ms = ttl_ms

    async def claim(self, session_id: str) -> Lease | None:
        sent = time.monotonic()
        fence = int(
            await script(self.redis, "worker_claim")(
                keys=[
                    keys.unowned_sessions(),
                    keys.session_lease(session_id),
                    keys.session_fence(session_id),
                    keys.session(session_id),
                    keys.worker_sessions(self.worker_id),
                ],
                args=[session_id, self.worker_id, self.ttl_ms, _WS_PREFIX, _WS_SUFFIX],
            )
        )
        return Lease(session_id, fence, sent + self.ttl_ms / 1000) if fence else None

    async def renew(self, leases: list[Lease]) -> list[bool]:
        """Renew many leases in one round trip; a lease that could not be renewed is lost for good."""
        if not leases:
            return []
        sent = time.monotonic()
        renew = script(self.redis, "worker_renew")
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                await renew(
                    keys=[keys.session_lease(lease.session_id), keys.session_fence(lease.session_id)],
                    args=[self.worker_id, lease.fence, self.ttl_ms],
                    client=pipe,
                )
            results = await pipe.execute()
        ok = [bool(int(r)) for r in results]
        for lease, renewed in zip(leases, ok, strict=True):
            if renewed:
                lease.valid_until = sent + self.ttl_ms / 1000
        return ok

    async def release(self, lease: Lease, *, requeue: bool) -> bool:
        return bool(
            await script(self.redis, "worker_release")(
                keys=[
                    keys.session_lease(lease.session_id),
                    keys.session_fence(lease.session_id),
                    keys.session(lease.session_id),
                    keys.worker_sessions(self.worker_id),
                    keys.unowned_sessions(),
                ],
                args=[self.worker_id, lease.fence, lease.session_id, "1" if requeue else "0"],
            )
        )

    async def emit(
        self,
        lease: Lease,
        event_json: str | None,
        *,
        marker_key: str | None = None,
        marker_value: str = "1",
        ack_command: str | None = None,
    ) -> bool:
        """Fenced: append to this worker's outbox (and set a marker NX, and XACK a command) in one step.

        Returns False when the marker already existed (nothing appended); raises FencedOff when not the owner.
        """
        result = int(
            await script(self.redis, "worker_fenced_emit")(
                keys=[
                    keys.session_lease(lease.session_id),
                    keys.session_fence(lease.session_id),
                    keys.outbox(self.worker_id),
                    marker_key or "",
                    keys.session_commands(lease.session_id),
                ],
                args=[
                    self.worker_id,
                    lease.fence,
                    event_json or "",
                    marker_value,
                    MARKER_TTL_SECONDS,
                    COMMANDS_GROUP,
                    ack_command or "",
                ],
            )
        )
        if result < 0:
            raise FencedOff(lease.session_id)
        return result == 1

    async def hand_over(self, entries: list[Spooled]) -> int:
        """Write spooled events to this worker's outbox in one round trip (`worker_handover_emit.lua`): facts
        always, state events only while the lease is still ours. Returns how many were appended."""
        calls = [
            (
                [keys.session_lease(e.session_id), keys.session_fence(e.session_id), keys.outbox(self.worker_id)],
                [self.worker_id, e.fence, e.kind, e.event_json],
            )
            for e in entries
        ]
        return sum(int(r) for r in await run_many(self.redis, "worker_handover_emit", calls))

    async def requeue_orphans(self, dead_worker_id: str) -> int:
        """Sessions of a dead worker whose leases lapsed go back to the unowned set; returns how many."""
        requeue = script(self.redis, "worker_requeue_orphan")
        terminal = " ".join(s.value for s in TERMINAL_STATUSES)
        moved = 0
        members: Any = await self.redis.smembers(keys.worker_sessions(dead_worker_id))  # type: ignore[misc]
        for session_id in members:
            moved += int(
                await requeue(
                    keys=[
                        keys.session(session_id),
                        keys.session_lease(session_id),
                        keys.worker_sessions(dead_worker_id),
                        keys.unowned_sessions(),
                    ],
                    args=[session_id, dead_worker_id, terminal],
                )
            )
        return moved
