"""Beside sending (scope send): mark a chat read, show typing, see and clear a session's send queue."""

from __future__ import annotations

from fastapi import APIRouter, status

from functions.api.auth import Principal, ReadScope, SendScope
from functions.api.logic import actions
from functions.api.models import CommandAccepted, MessageOut, SendQueueCleared, SendQueueOut, TypingRequest
from functions.api.problems import problems

router = APIRouter(prefix="/v1/sessions", tags=["messages"])


def accepted(command: actions.Command) -> CommandAccepted:
    return CommandAccepted(session_id=command.session_id, command=command.type, command_id=command.command_id)


@router.post("/{session_id}/chats/{chat}/read", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409))
async def mark_read(session_id: str, chat: str, principal: Principal = SendScope) -> CommandAccepted:
    """Mark the chat read: the contact sees its messages read, the phone clears the chat's unread count."""
    return accepted(await actions.mark_read(principal.workspace_id, session_id, chat))


@router.post(
    "/{session_id}/chats/{chat}/typing", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409)
)
async def typing(session_id: str, chat: str, body: TypingRequest, principal: Principal = SendScope) -> CommandAccepted:
    """Show typing (or recording a voice note) in the chat for a few seconds; `paused` stops it."""
    return accepted(await actions.typing(principal.workspace_id, session_id, chat, body.state, body.seconds))


@router.get("/{session_id}/queue", responses=problems(403, 404))
async def send_queue(session_id: str, principal: Principal = ReadScope) -> SendQueueOut:
    """The session's messages waiting for their paced turn (the first 100, oldest first) and how many wait."""
    depth, queued = await actions.send_queue(principal.workspace_id, session_id)
    return SendQueueOut(session_id=session_id, depth=depth, messages=[MessageOut.of(r) for r in queued])


@router.delete("/{session_id}/queue", responses=problems(403, 404))
async def clear_send_queue(session_id: str, principal: Principal = SendScope) -> SendQueueCleared:
    """Cancel every queued message the worker has not started sending (each becomes `failed`, reason cancelled)."""
    cancelled = await actions.clear_send_queue(principal.workspace_id, session_id)
    return SendQueueCleared(session_id=session_id, cancelled=cancelled)
