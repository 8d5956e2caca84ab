"""Outgoing message records: created by the API (idempotent on the client's id), advanced by events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import COMMAND_STREAM_MAXLEN, SendMessageCommand, SendTextCommand
from shared.events import Ack
from shared.outgoing import OutgoingContent
from shared.scripts import script
from shared.store.records import now_ms

MESSAGE_TTL_SECONDS = 30 * 24 * 3600


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Status only moves forward. A failure outranks `sent` (an error ack can follow a send WhatsApp accepted) but not
# `delivered`: a message the recipient got did not fail, and a later receipt proves a failure wrong.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.FAILED: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
}


def status_for_ack(ack: Ack) -> MessageStatus | None:
    if ack is Ack.FAILED:
        return MessageStatus.FAILED
    if ack is Ack.SENT:
        return MessageStatus.SENT
    if ack is Ack.RECEIVED:
        return MessageStatus.DELIVERED
    if ack in (Ack.READ, Ack.PLAYED):
        return MessageStatus.READ
    return None


class MessageRecord(BaseModel):
    id: str
    workspace_id: str
    session_id: str
    to: str
    text: str
    client_message_id: str
    kind: str | None = None  # None: a plain text (the hot path); else OutgoingContent.type
    content: str | None = None  # the OutgoingContent as JSON, for every message but a plain text
    status: MessageStatus = MessageStatus.QUEUED
    wa_message_id: str | None = None
    error: str | None = None
    created_at_ms: int = Field(default_factory=now_ms)
    updated_at_ms: int = Field(default_factory=now_ms)

    def to_hash(self) -> dict[str, str]:
        # Every field is a str, a StrEnum or an int, whose str() is its JSON form: no model_dump on the hot path.
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


async def create_message(redis: Redis, record: MessageRecord) -> tuple[MessageRecord, bool]:
    """Store the message unless this client id was seen for the session; returns (record, created)."""
    fields = record.to_hash()
    flat = [item for pair in fields.items() for item in pair]
    existing_id = await script(redis, "message_create")(
        keys=[
            keys.client_message(record.session_id, record.client_message_id),
            keys.message(record.id),
            keys.session_messages(record.session_id),
        ],
        args=[record.id, MESSAGE_TTL_SECONDS, record.created_at_ms, *flat],
    )
    if existing_id == record.id:
        return record, True
    existing = await get_message(redis, str(existing_id))
    if existing is None:
        raise LookupError(f"message {existing_id} vanished")
    return existing, False


async def id_for_client_message(redis: Redis, session_id: str, client_message_id: str | None) -> str | None:
    if not client_message_id:
        return None
    found = await redis.get(keys.client_message(session_id, client_message_id))
    return str(found) if found else None


async def get_message(redis: Redis, message_id: str) -> MessageRecord | None:
    fields = await redis.hgetall(keys.message(message_id))
    return MessageRecord.model_validate({str(k): v for k, v in fields.items()}) if fields else None


async def advance_status(
    redis: Redis,
    session_id: str,
    *,
    status: MessageStatus,
    message_id: str | None = None,
    wa_message_id: str | None = None,
    error: str | None = None,
) -> bool:
    """Move a message forward (never back); find it by our id, or by WhatsApp's id for acks."""
    return bool(
        await script(redis, "message_advance")(
            keys=[
                keys.message(message_id) if message_id else "",
                keys.wa_message(session_id, wa_message_id) if wa_message_id else "",
            ],
            args=[
                status.value,
                STATUS_RANK[status],
                wa_message_id or "",
                error or "",
                now_ms(),
                MESSAGE_TTL_SECONDS,
                keys.message(""),
                *[f"{s.value}={r}" for s, r in STATUS_RANK.items()],
            ],
        )
    )


CANCELLED_REASON = "cancelled: the tenant cleared the session's send queue"


async def queued_messages(redis: Redis, session_id: str, limit: int) -> tuple[int, list[MessageRecord]]:
    """The session's send queue: how many wait, and the first `limit` of them still queued (oldest first)."""
    depth = int(await redis.zcard(keys.send_queue(session_id)))
    ids = [str(i) for i in await redis.zrange(keys.send_queue(session_id), 0, limit - 1)]
    records = [await get_message(redis, message_id) for message_id in ids]
    return depth, [r for r in records if r is not None and r.status is MessageStatus.QUEUED]


async def cancel_queued(redis: Redis, session_id: str) -> list[str]:
    """Cancel every queued message no worker has started sending (one step); returns their ids."""
    cancelled = await script(redis, "send_queue_cancel")(
        keys=[keys.send_queue(session_id)],
        args=[
            keys.message(""),
            keys.session_sending(session_id, ""),
            keys.session_sent(session_id, ""),
            MESSAGE_TTL_SECONDS,
            now_ms(),
            CANCELLED_REASON,
        ],
    )
    return [str(i) for i in cancelled]


class SendOutcome(StrEnum):
    CREATED = "created"
    EXISTING = "existing"
    LIMITED = "limited"
    NO_SESSION = "no_session"
    REFUSED = "refused"


@dataclass(frozen=True)
class QueuedMessage:
    outcome: SendOutcome
    record: MessageRecord | None
    retry_after_ms: int = 0
    session_status: str | None = None


def send_command(record: MessageRecord) -> SendTextCommand | SendMessageCommand:
    """The worker's command for a message: one per message, its id derived from the message's (no second ULID)."""
    common = {
        "command_id": "cmd_" + record.id.removeprefix("msg_"),
        "session_id": record.session_id,
        "issued_at": datetime.fromtimestamp(record.created_at_ms / 1000, UTC),
        "message_id": record.id,
        "client_message_id": record.client_message_id,
        "to": record.to,
    }
    if record.content is None:
        return SendTextCommand(**common, text=record.text)
    return SendMessageCommand(**common, content=OutgoingContent.model_validate_json(record.content))


def queue_message_call(
    record: MessageRecord, *, queue_max: int, ms_per_send: int, refused_statuses: Iterable[str] = ()
) -> tuple[list[str], list[str | int]]:
    """The (keys, args) of the `message_send` script for `record`: for callers that batch many sends
    into one round trip (`shared.scripts.run_many`); `read_queue_result` reads each reply."""
    command = send_command(record)
    return (
        [
            keys.client_message(record.session_id, record.client_message_id),
            keys.message(record.id),
            keys.session_messages(record.session_id),
            keys.send_queue(record.session_id),
            keys.session_commands(record.session_id),
            keys.session(record.session_id),
            keys.workspace(record.workspace_id),
        ],
        [
            record.id,
            MESSAGE_TTL_SECONDS,
            record.created_at_ms,
            queue_max,
            command.model_dump_json(),
            COMMAND_STREAM_MAXLEN,
            record.workspace_id,
            " ".join(refused_statuses),
            ms_per_send,
            *[item for pair in record.to_hash().items() for item in pair],
        ],
    )


async def read_queue_result(redis: Redis, record: MessageRecord, result: Sequence[object]) -> QueuedMessage:
    outcome, value = SendOutcome(str(result[0])), str(result[1])
    if outcome is SendOutcome.NO_SESSION:
        return QueuedMessage(outcome, None)
    if outcome is SendOutcome.REFUSED:
        return QueuedMessage(outcome, None, session_status=value)
    if outcome is SendOutcome.LIMITED:
        return QueuedMessage(outcome, None, retry_after_ms=int(value))
    if outcome is SendOutcome.CREATED:
        return QueuedMessage(outcome, record)
    existing = await get_message(redis, value)
    if existing is None:
        raise LookupError(f"message {value} vanished")
    return QueuedMessage(outcome, existing)


async def queue_message(
    redis: Redis, record: MessageRecord, *, queue_max: int, ms_per_send: int, refused_statuses: Iterable[str] = ()
) -> QueuedMessage:
    """Accept a message for sending in one step (one round trip).

    NO_SESSION: the session does not exist, is deleted or is another workspace's. EXISTING: a message
    already stored for this client id, returned as it is (no token spent). REFUSED: the session's status
    is one of `refused_statuses`. LIMITED: the session's send queue is full (`retry_after_ms`: about when a
    place frees up at the paced rate).
    CREATED: the record, its index entry and the worker's SendTextCommand were written together.
    Nothing is written in the other cases."""
    call_keys, args = queue_message_call(
        record, queue_max=queue_max, ms_per_send=ms_per_send, refused_statuses=refused_statuses
    )
    result = await script(redis, "message_send")(keys=call_keys, args=args)
    return await read_queue_result(redis, record, result)
