"""WhatsApp session records in Redis."""

from __future__ import annotations

from dataclasses import dataclass

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
