"""Messages: send text through a session (scope send), read a message's status (scope read)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from functions.api.auth import Principal, ReadScope, SendScope
from functions.api.logic import actions, messages
from functions.api.models import CommandAccepted, MessageCreate, MessageEdit, MessageOut
from functions.api.problems import problems

router = APIRouter(prefix="/v1", tags=["messages"])


@router.post(
    "/sessions/{session_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageOut,
    responses=problems(403, 404, 409, 429),
)
async def send_message(session_id: str, body: MessageCreate, principal: Principal = SendScope) -> Response:
    """Queue a message of any type (see the body's schema). Idempotent on `client_message_id`: a repeat returns the
    first message (header `Idempotent-Replayed: true`); the same id with a different message answers 409. Media over
    the type's limit, or an uploaded media id that is not there yet, answers 422 before anything is queued."""
    record, created = await messages.send_message(
        principal.workspace_id, session_id, to=body.to, content=body.content(), client_message_id=body.client_message_id
    )
    headers = {"Location": f"/v1/messages/{record.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    # Serialized here, once: the hot path skips FastAPI's re-validation of a model built from our own record.
    return Response(MessageOut.of(record).model_dump_json(), status.HTTP_202_ACCEPTED, headers, "application/json")


@router.get("/messages/{message_id}", responses=problems(403, 404))
async def get_message(message_id: str, principal: Principal = ReadScope) -> MessageOut:
    return MessageOut.of(await messages.get_message(principal.workspace_id, message_id))


@router.delete(
    "/messages/{message_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses=problems(403, 404, 409),
)
async def delete_for_everyone(message_id: str, principal: Principal = SendScope) -> CommandAccepted:
    """Delete a sent message for everyone (`message.revoked` follows)."""
    command = await actions.delete_for_everyone(principal.workspace_id, message_id)
    return CommandAccepted(session_id=command.session_id, command=command.type, command_id=command.command_id)


@router.patch(
    "/messages/{message_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses=problems(403, 404, 409),
)
async def edit_text(message_id: str, body: MessageEdit, principal: Principal = SendScope) -> CommandAccepted:
    """Edit a sent text (`message.edited` follows)."""
    command = await actions.edit_text(principal.workspace_id, message_id, body.text)
    return CommandAccepted(session_id=command.session_id, command=command.type, command_id=command.command_id)
