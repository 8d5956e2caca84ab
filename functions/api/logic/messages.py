"""Outgoing messages: accepted once per client id, charged to the session's send limit, queued for its worker."""

from __future__ import annotations

import math

from functions.api import batching, errors
from functions.api.logic import media
from functions.api.logic.sessions import CANNOT_SEND
from shared.ids import new_id
from shared.outgoing import OutgoingContent
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import messages
from shared.store.messages import MessageRecord, SendOutcome
from shared.store.records import now_ms

REFUSED = sorted(s.value for s in CANNOT_SEND)


def chat_id(to: str) -> str:
    """Phone numbers become WhatsApp chat ids (`<digits>@c.us`); chat and group ids pass through."""
    return to if "@" in to else f"{to}@c.us"


async def send_message(
    workspace_id: str, session_id: str, *, to: str, content: OutgoingContent, client_message_id: str
) -> tuple[MessageRecord, bool]:
    """Returns (message, created); an earlier message with the same client id comes back unchanged.
    The session's ownership and status are checked inside the same Redis step that stores the message."""
    now = now_ms()
    plain = content.plain_text
    record = MessageRecord(
        id=new_id("msg"),
        workspace_id=workspace_id,
        session_id=session_id,
        to=chat_id(to),
        text=content.text or "",
        client_message_id=client_message_id,
        kind=None if plain else content.type,
        content=None if plain else content.model_dump_json(exclude_defaults=True),
        created_at_ms=now,
        updated_at_ms=now,
    )
    if not plain:
        await media.check_before_queueing(workspace_id, content)
    redis = get_redis()
    settings = get_settings()
    call_keys, args = messages.queue_message_call(
        record,
        queue_max=settings.send_queue_max,
        ms_per_send=settings.send_gap_ms + settings.send_jitter_ms // 2,
        refused_statuses=REFUSED,
    )
    result = await messages.read_queue_result(redis, record, await batching.message_send.run(redis, call_keys, args))
    if result.outcome is SendOutcome.NO_SESSION:
        raise errors.NotFound("session", session_id)
    if result.outcome is SendOutcome.REFUSED:
        raise errors.Conflict(f"session {session_id} is {result.session_status}; it cannot send")
    if result.outcome is SendOutcome.LIMITED:
        seconds = max(1, math.ceil(result.retry_after_ms / 1000))
        raise errors.RateLimited(
            f"session {session_id}'s send queue is full (it sends at a paced rate); retry in {seconds} s", seconds
        )
    assert result.record is not None
    if result.outcome is SendOutcome.EXISTING and _fingerprint(result.record) != _fingerprint(record):
        raise errors.Conflict(f"client_message_id {client_message_id!r} was already used for a different message")
    return result.record, result.outcome is SendOutcome.CREATED


def _fingerprint(record: MessageRecord) -> tuple[str, str, str | None, str | None]:
    return record.to, record.text, record.kind, record.content


async def get_message(workspace_id: str, message_id: str) -> MessageRecord:
    record = await messages.get_message(get_redis(), message_id)
    if record is None or record.workspace_id != workspace_id:
        raise errors.NotFound("message", message_id)
    return record
