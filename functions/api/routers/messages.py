"""Messages: send text through a session (scope send), read a message's status (scope read)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from functions.api.auth import Principal, ReadScope, SendScope
from functions.api.logic import messages
from functions.api.models import MessageCreate, MessageOut
from functions.api.problems import problems

router = APIRouter(prefix="/v1", tags=["messages"])


@router.post(
    "/sessions/{session_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(403, 404, 409, 429),
)
async def send_message(
    session_id: str, body: MessageCreate, response: Response, principal: Principal = SendScope
) -> MessageOut:
    """Queue a text message. Idempotent on `client_message_id`: a repeat returns the first message
    (header `Idempotent-Replayed: true`); the same id with a different message answers 409."""
    record, created = await messages.send_text(
        principal.workspace_id, session_id, to=body.to, text=body.text, client_message_id=body.client_message_id
    )
    response.headers["Location"] = f"/v1/messages/{record.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return MessageOut.of(record)


@router.get("/messages/{message_id}", responses=problems(403, 404))
async def get_message(message_id: str, principal: Principal = ReadScope) -> MessageOut:
    return MessageOut.of(await messages.get_message(principal.workspace_id, message_id))
