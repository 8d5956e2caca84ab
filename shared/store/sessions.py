"""WhatsApp session records in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.events import SessionStatus
from shared.scripts import script
from shared.store.records import SessionRecord, now_ms

NO_PHONE_KEY = keys.workspace_phone_sessions("-", "-")
RETIRED_REASON = "superseded_by_newer_session"


@dataclass(frozen=True)
class StatusChange:
    applied: bool
    retired_session_ids: list[str]


async def create_session(redis: Redis, record: SessionRecord) -> SessionRecord:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.session(record.id), mapping=record.to_hash())  # type: ignore[arg-type]
        pipe.zadd(keys.workspace_sessions(record.workspace_id), {record.id: record.created_at_ms})
        pipe.zadd(keys.sessions_index(), {record.id: record.created_at_ms})
        pipe.sadd(keys.unowned_sessions(), record.id)
        if record.phone:
            pipe.sadd(keys.workspace_phone_sessions(record.workspace_id, record.phone), record.id)
        await pipe.execute()
    return record


async def get_session(redis: Redis, session_id: str) -> SessionRecord | None:
    fields = await redis.hgetall(keys.session(session_id))
    return SessionRecord.from_hash({str(k): str(v) for k, v in fields.items()}) if fields else None


async def session_workspaces(redis: Redis, session_ids: list[str]) -> dict[str, str | None]:
    """Map each session id to its workspace id (None when the session does not exist or was deleted)."""
    if not session_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for session_id in session_ids:
            pipe.hmget(keys.session(session_id), "workspace_id", "deleted_at_ms")
        rows = await pipe.execute()
    return {sid: (row[0] if row[0] and not row[1] else None) for sid, row in zip(session_ids, rows, strict=True)}


async def apply_status(
    redis: Redis,
    session: SessionRecord,
    status: SessionStatus,
    *,
    reason: str | None,
    occurred_at_ms: int,
    phone: str | None = None,
) -> StatusChange:
    """Record a status change unless a newer one is stored; `ready` retires the phone's other sessions."""
    phone_for_set = phone or session.phone or ""
    phone_key = keys.workspace_phone_sessions(session.workspace_id, phone_for_set) if phone_for_set else NO_PHONE_KEY
    result = await script(redis, "session_status")(
        keys=[keys.session(session.id), phone_key],
        args=[
            status.value,
            reason or "",
            occurred_at_ms,
            now_ms(),
            phone_for_set,
            SessionStatus.RETIRED.value,
            RETIRED_REASON,
            keys.session(""),
        ],
    )
    return StatusChange(applied=bool(int(result[0])), retired_session_ids=[str(x) for x in result[1:]])


async def set_qr(redis: Redis, session_id: str, qr: str, expires_at: str, occurred_at_ms: int) -> bool:
    """Store the latest QR (and status `qr`) unless a newer status change is already stored."""
    return bool(
        await script(redis, "session_qr")(
            keys=[keys.session(session_id)],
            args=[qr, expires_at, occurred_at_ms, now_ms(), SessionStatus.QR.value],
        )
    )


async def set_pairing_code(redis: Redis, session_id: str, code: str, occurred_at_ms: int) -> bool:
    return bool(
        await script(redis, "session_pairing_code")(
            keys=[keys.session(session_id)],
            args=[code, occurred_at_ms, now_ms(), SessionStatus.PAIRING.value],
        )
    )


# Cleanup and restore ---------------------------------------------------------------------------
# Cleanup's writes are compare-and-set (cleanup_apply.lua): each applies only if the session is still in the
# state cleanup read, so a worker's update racing with a cleanup run is never overwritten.

TERMINAL_STATUSES: frozenset[SessionStatus] = frozenset(
    {SessionStatus.LOGGED_OUT, SessionStatus.FAILED, SessionStatus.RETIRED, SessionStatus.STOPPED}
)
CLEANUP_SINCE_FIELD = "cleanup_since"
RESTORED_REASON = "restored"
QR_TIMEOUT_REASON = "qr_timeout"
CLEANUP_OPS_PER_CALL = 500  # keeps each script call short (Redis runs one script at a time)


class RestoreOutcome(StrEnum):
    RESTORED = "restored"
    NOT_FOUND = "not_found"
    NOT_DELETED = "not_deleted"
    EXPIRED = "expired"


_RESTORE_OUTCOMES = {
    1: RestoreOutcome.RESTORED,
    0: RestoreOutcome.NOT_FOUND,
    -1: RestoreOutcome.NOT_DELETED,
    -2: RestoreOutcome.EXPIRED,
}


def key_parts(build: Callable[..., str], arity: int) -> tuple[str, ...]:
    """Split a key template around its arguments, so a Lua script can build `parts[0] + arg1 + parts[1] ...`."""
    marks = [chr(1 + i) for i in range(arity)]
    text = build(*marks)
    parts: list[str] = []
    for mark in marks:
        head, text = text.split(mark, 1)
        parts.append(head)
    return (*parts, text)


@dataclass(frozen=True)
class CleanupOp:
    """One compare-and-set write of cleanup (see cleanup_apply.lua for each `op`).

    `expected` is the status (transition), deleted_at_ms (purge) or owner (release) that must still hold.
    """

    op: Literal["transition", "purge", "release", "unphone", "orphan"]
    session_id: str
    workspace_id: str = ""
    phone: str | None = None
    expected: str = ""
    expected_status_at_ms: str = ""
    status: str = ""
    reason: str = ""
    soft_delete: bool = False
    event_json: str = ""
    guard_id: str = ""
    guard_status: str = ""
    guard_status_at_ms: str = ""

    def row(self) -> list[str]:
        return [
            self.op,
            self.session_id,
            self.workspace_id,
            self.phone or "",
            self.expected,
            self.expected_status_at_ms,
            self.status,
            self.reason,
            "1" if self.soft_delete else "0",
            self.event_json,
            self.guard_id,
            self.guard_status,
            self.guard_status_at_ms,
        ]


def op_applied(reply: object) -> bool:
    """Whether one cleanup_apply reply says the write applied (a purge replies `[1, s3_key]`)."""
    if isinstance(reply, list):
        return bool(reply) and bool(int(reply[0]))
    return bool(int(reply))  # type: ignore[call-overload]


def purged_s3_key(reply: object) -> str:
    """The S3 key of a purged session's large auth archive ('' when none)."""
    return str(reply[1]) if isinstance(reply, list) and len(reply) > 1 and reply[1] else ""


async def apply_cleanup_ops(
    redis: Redis, ops: Sequence[CleanupOp], *, now: int | None = None, outbox_key: str | None = None
) -> list[object]:
    """Apply cleanup's writes (few script calls for many sessions); one reply per op, in order.

    Transitions push their `event_json` to `outbox_key` in the same step as the change.
    """
    header = [
        now_ms() if now is None else now,
        " ".join(sorted(s.value for s in TERMINAL_STATUSES)),
        keys.session(""),
        keys.session_lease(""),
        keys.session_auth(""),
        *key_parts(keys.workspace_phone_sessions, 2),
        *key_parts(keys.workspace_sessions, 1),
        *key_parts(keys.worker_sessions, 1),
        *key_parts(keys.session_commands, 1),
        *key_parts(keys.session_messages, 1),
        *key_parts(keys.session_fence, 1),
    ]
    apply = script(redis, "cleanup_apply")
    replies: list[object] = []
    for start in range(0, len(ops), CLEANUP_OPS_PER_CALL):
        rows = json.dumps([op.row() for op in ops[start : start + CLEANUP_OPS_PER_CALL]], separators=(",", ":"))
        replies += await apply(
            keys=[keys.unowned_sessions(), keys.sessions_index(), outbox_key or NO_PHONE_KEY, keys.auth_index()],
            args=[*header, rows],
        )
    return replies


async def _apply_one(redis: Redis, op: CleanupOp, now: int | None) -> object:
    return (await apply_cleanup_ops(redis, [op], now=now))[0]


async def stop_for_qr_timeout(
    redis: Redis, session: SessionRecord, *, reason: str = QR_TIMEOUT_REASON, now: int | None = None
) -> bool:
    """Status `failed` (reason `qr_timeout`) unless the session changed since `session` was read."""
    return await _transition_unless_changed(redis, session, SessionStatus.FAILED, reason, now=now)


async def soft_delete_session(
    redis: Redis, session: SessionRecord, *, reason: str = "deleted", now: int | None = None
) -> bool:
    """Tombstone the session (status `stopped`, `deleted_at_ms` set) unless it changed since it was read."""
    return await _transition_unless_changed(redis, session, SessionStatus.STOPPED, reason, now=now, soft_delete=True)


async def _transition_unless_changed(
    redis: Redis,
    session: SessionRecord,
    status: SessionStatus,
    reason: str,
    *,
    now: int | None,
    soft_delete: bool = False,
) -> bool:
    """Compare-and-set on the status and status time `session` was read with."""
    op = CleanupOp(
        "transition",
        session.id,
        session.workspace_id,
        session.phone,
        expected=session.status.value,
        expected_status_at_ms=str(session.status_at_ms),
        status=status.value,
        reason=reason,
        soft_delete=soft_delete,
    )
    return op_applied(await _apply_one(redis, op, now))


async def purge_session(redis: Redis, session: SessionRecord) -> bool:
    """Remove a tombstoned session for good (hash, indexes, Redis auth archive, command stream, message index,
    fence) unless it was restored since."""
    if session.deleted_at_ms is None:
        return False
    op = CleanupOp("purge", session.id, session.workspace_id, session.phone, expected=str(session.deleted_at_ms))
    return op_applied(await _apply_one(redis, op, None))


async def release_expired_owner(redis: Redis, session_id: str, owner: str) -> bool:
    """Return a live session whose owner's lease expired (and was not taken over) to the unowned pool."""
    return op_applied(await _apply_one(redis, CleanupOp("release", session_id, expected=owner), None))


async def restore_session(
    redis: Redis, session_id: str, *, retention_seconds: int, now: int | None = None
) -> RestoreOutcome:
    """Bring back a soft-deleted session while its tombstone is kept: status `starting`, reason `restored`,
    live for its phone again and back in the unowned pool (a worker starts it). Emitting the matching
    session.status event is the caller's job.
    """
    session = await redis.hmget(keys.session(session_id), "workspace_id", "phone")
    workspace_id, phone = (str(v) if v else None for v in session)
    result = await script(redis, "session_restore")(
        keys=[
            keys.session(session_id),
            keys.workspace_phone_sessions(workspace_id or "-", phone) if phone else NO_PHONE_KEY,
            keys.unowned_sessions(),
        ],
        args=[
            session_id,
            now_ms() if now is None else now,
            retention_seconds * 1000,
            SessionStatus.STARTING.value,
            RESTORED_REASON,
        ],
    )
    return _RESTORE_OUTCOMES[int(result)]


async def auth_archive_s3_key(redis: Redis, session_id: str) -> str:
    """The S3 key a session's auth archive record points at ('' when none)."""
    key = keys.session_auth(session_id)
    if await redis.type(key) != "hash":
        return ""
    return str(await redis.hget(key, "s3_key") or "")


async def delete_orphan_auth(redis: Redis, session_id: str) -> bool:
    """Delete the Redis auth archive and auth-index entry of `session_id` if that session no longer exists."""
    result = await script(redis, "auth_orphan")(
        keys=[keys.session(session_id), keys.session_auth(session_id), keys.auth_index()],
        args=[session_id],
    )
    return bool(int(result))


# Tenant API ------------------------------------------------------------------------------------
LIVE_STATUSES: frozenset[SessionStatus] = frozenset({SessionStatus.AUTHENTICATED, SessionStatus.READY})


@dataclass(frozen=True)
class PhoneSessionCreate:
    """The outcome of creating a session for a phone: the new record and the stale sessions retired
    for it, or (`conflict_session_id`) the live session that stopped the creation."""

    record: SessionRecord | None
    retired_session_ids: list[str]
    conflict_session_id: str | None = None


async def create_session_for_phone(redis: Redis, record: SessionRecord) -> PhoneSessionCreate:
    """Create `record` (which has a phone) after retiring the phone's stale sessions in the workspace,
    all in one step; nothing changes if the phone already has a live (authenticated/ready) session."""
    if not record.phone:
        raise ValueError("create_session_for_phone needs a record with a phone")
    fields = record.to_hash()
    result = await script(redis, "session_create_for_phone")(
        keys=[
            keys.session(record.id),
            keys.workspace_sessions(record.workspace_id),
            keys.sessions_index(),
            keys.unowned_sessions(),
            keys.workspace_phone_sessions(record.workspace_id, record.phone),
        ],
        args=[
            record.id,
            record.created_at_ms,
            now_ms(),
            SessionStatus.RETIRED.value,
            RETIRED_REASON,
            keys.session(""),
            " ".join(sorted(s.value for s in LIVE_STATUSES)),
            *[item for pair in fields.items() for item in pair],
        ],
    )
    outcome, *rest = (str(x) for x in result)
    if outcome == "conflict":
        return PhoneSessionCreate(record=None, retired_session_ids=[], conflict_session_id=rest[0])
    return PhoneSessionCreate(record=record, retired_session_ids=rest)


@dataclass(frozen=True)
class SessionPage:
    records: list[SessionRecord]
    # (created_at_ms, session_id) of the last record looked at, when more may follow.
    next_after: tuple[int, str] | None


async def list_workspace_sessions(
    redis: Redis,
    workspace_id: str,
    *,
    limit: int,
    after: tuple[int, str] | None = None,
    statuses: frozenset[SessionStatus] | None = None,
    scan_batch: int = 200,
) -> SessionPage:
    """The workspace's sessions newest first (deleted ones left out), optionally only some statuses.

    `after` is the (created_at_ms, id) position of the previous page's last record; each page reads the
    index in bounded batches, so a sparse status filter costs more round trips, never an unbounded read.
    """
    index = keys.workspace_sessions(workspace_id)
    found: list[SessionRecord] = []
    max_score: str = f"{after[0]}" if after else "+inf"
    last_seen = after
    while True:
        raw_rows = await redis.zrevrangebyscore(index, max_score, "-inf", start=0, num=scan_batch, withscores=True)
        rows: list[tuple[str, int]] = [(str(m), int(s)) for m, s in raw_rows]  # type: ignore[misc,str-unpack]
        if after is not None:
            rows = [(m, s) for m, s in rows if not (s == after[0] and m >= after[1])]
        if not rows:
            return SessionPage(found, None)
        async with redis.pipeline(transaction=False) as pipe:
            for member, _ in rows:
                pipe.hgetall(keys.session(member))
            hashes = await pipe.execute()
        for (member, score), fields in zip(rows, hashes, strict=True):
            last_seen = (score, member)
            if not fields:
                continue
            record = SessionRecord.from_hash({str(k): str(v) for k, v in fields.items()})
            if record.deleted_at_ms is not None or (statuses and record.status not in statuses):
                continue
            found.append(record)
            if len(found) == limit:
                return SessionPage(found, last_seen)
        after = last_seen
        max_score = f"{after[0]}" if after else "+inf"
