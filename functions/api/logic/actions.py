"""What a tenant does beside sending: mark a chat read, show typing, delete a sent message for everyone, edit a sent
text, see and clear a session's send queue. Each page action is a command to the session's worker."""

from __future__ import annotations

from functions.api import errors
from functions.api.logic.messages import chat_id, get_message
from functions.api.logic.sessions import CANNOT_SEND, owned_session
from shared.commands import (
    Command,
    DeleteMessageCommand,
    EditMessageCommand,
    MarkReadCommand,
    TypingCommand,
    enqueue_command,
)
from shared.redis_client import get_redis
from shared.store import messages
from shared.store.messages import MessageRecord, MessageStatus

QUEUE_PAGE = 100
CHANGEABLE = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ})


async def _live_session_command(workspace_id: str, session_id: str, command: Command) -> Command:
    record = await owned_session(workspace_id, session_id)
    if record.status in CANNOT_SEND:
        raise errors.Conflict(f"session {session_id} is {record.status.value}; it cannot act")
    await enqueue_command(get_redis(), command)
    return command


async def mark_read(workspace_id: str, session_id: str, chat: str) -> Command:
    return await _live_session_command(
        workspace_id, session_id, MarkReadCommand(session_id=session_id, chat=chat_id(chat))
    )


async def typing(workspace_id: str, session_id: str, chat: str, state: str, seconds: float) -> Command:
    command = TypingCommand(session_id=session_id, chat=chat_id(chat), state=state, seconds=seconds)  # type: ignore[arg-type]
    return await _live_session_command(workspace_id, session_id, command)


async def _sent_message(workspace_id: str, message_id: str, what: str) -> MessageRecord:
    record = await get_message(workspace_id, message_id)
    if record.status not in CHANGEABLE or not record.wa_message_id:
        raise errors.Conflict(f"message {message_id} is {record.status.value}; only a sent message can be {what}")
    return record


async def delete_for_everyone(workspace_id: str, message_id: str) -> Command:
    record = await _sent_message(workspace_id, message_id, "deleted for everyone")
    command = DeleteMessageCommand(
        session_id=record.session_id, message_id=record.id, wa_message_id=record.wa_message_id or ""
    )
    return await _live_session_command(workspace_id, record.session_id, command)


async def edit_text(workspace_id: str, message_id: str, text: str) -> Command:
    record = await _sent_message(workspace_id, message_id, "edited")
    if record.kind not in (None, "text"):
        raise errors.Conflict(f"message {message_id} is a {record.kind}; only a text can be edited")
    command = EditMessageCommand(
        session_id=record.session_id, message_id=record.id, wa_message_id=record.wa_message_id or "", text=text
    )
    return await _live_session_command(workspace_id, record.session_id, command)


async def send_queue(workspace_id: str, session_id: str) -> tuple[int, list[MessageRecord]]:
    await owned_session(workspace_id, session_id)
    return await messages.queued_messages(get_redis(), session_id, QUEUE_PAGE)


async def clear_send_queue(workspace_id: str, session_id: str) -> list[str]:
    await owned_session(workspace_id, session_id)
    return await messages.cancel_queued(get_redis(), session_id)
