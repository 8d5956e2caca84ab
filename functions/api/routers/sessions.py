"""Sessions: create, list, read, QR (JSON and PNG), pairing code, restart, logout, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from functions.api.auth import ManageScope, Principal, ReadScope
from functions.api.logic import sessions
from functions.api.models import (
    CommandAccepted,
    Page,
    PairingCodeOut,
    PairingCodeRequest,
    QrOut,
    SessionCreate,
    SessionCreated,
    SessionOut,
)
from functions.api.problems import problems
from shared.commands import Command
from shared.events import SessionStatus

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def _accepted(command: Command) -> CommandAccepted:
    return CommandAccepted(session_id=command.session_id, command=command.type, command_id=command.command_id)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 409))
async def create_session(body: SessionCreate, principal: Principal = ManageScope) -> SessionCreated:
    """Create a session; a worker picks it up and starts the login (QR, or pairing code when asked).

    With a phone, the phone's stale sessions in the workspace are retired first; a phone that already
    has a connected session answers 409."""
    record, retired = await sessions.create_session(principal.workspace_id, body.name, body.phone)
    return SessionCreated(**SessionOut.of(record).model_dump(), retired_session_ids=retired)


@router.get("", responses=problems(403))
async def list_sessions(
    principal: Principal = ReadScope,
    status_filter: Annotated[list[SessionStatus] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Page[SessionOut]:
    """The workspace's sessions, newest first; `status` may repeat; follow `next_cursor` for more."""
    records, next_cursor = await sessions.list_sessions(
        principal.workspace_id, limit=limit, cursor=cursor, status=status_filter
    )
    return Page[SessionOut](items=[SessionOut.of(r) for r in records], next_cursor=next_cursor)


@router.get("/{session_id}", responses=problems(403, 404))
async def get_session(session_id: str, principal: Principal = ReadScope) -> SessionOut:
    return SessionOut.of(await sessions.owned_session(principal.workspace_id, session_id))


@router.get("/{session_id}/qr", responses=problems(403, 404))
async def get_qr(session_id: str, principal: Principal = ReadScope) -> QrOut:
    """The QR to scan now (it rotates: poll, or watch `session.qr` webhooks); `qr` is null when there is none."""
    record = await sessions.owned_session(principal.workspace_id, session_id)
    return QrOut(session_id=record.id, status=record.status, qr=record.qr, expires_at=record.qr_expires_at)


@router.get(
    "/{session_id}/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}, "description": "QR"},
        **problems(403, 404, 409),
    },
)
async def get_qr_png(
    session_id: str, principal: Principal = ReadScope, scale: Annotated[int, Query(ge=2, le=20)] = 8
) -> Response:
    png = await sessions.current_qr_png(principal.workspace_id, session_id, scale)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{session_id}/pairing-code", responses=problems(403, 404))
async def get_pairing_code(session_id: str, principal: Principal = ReadScope) -> PairingCodeOut:
    """The pairing code to type on the phone, once the worker has it (null until then)."""
    record = await sessions.owned_session(principal.workspace_id, session_id)
    return PairingCodeOut(session_id=record.id, status=record.status, code=record.pairing_code)


@router.post("/{session_id}/pairing-code", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409))
async def request_pairing_code(
    session_id: str, body: PairingCodeRequest | None = None, principal: Principal = ManageScope
) -> CommandAccepted:
    """Ask the worker for a pairing code (login without scanning); read it from GET .../pairing-code."""
    phone = body.phone if body else None
    return _accepted(await sessions.request_pairing_code(principal.workspace_id, session_id, phone))


@router.post("/{session_id}/restart", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409))
async def restart(session_id: str, principal: Principal = ManageScope) -> CommandAccepted:
    return _accepted(await sessions.restart(principal.workspace_id, session_id))


@router.post("/{session_id}/logout", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409))
async def logout(session_id: str, principal: Principal = ManageScope) -> CommandAccepted:
    return _accepted(await sessions.logout(principal.workspace_id, session_id))


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(403, 404, 409))
async def delete_session(session_id: str, principal: Principal = ManageScope) -> Response:
    """Stop the session (the phone stays linked until it logs out) and delete it."""
    await sessions.delete(principal.workspace_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
