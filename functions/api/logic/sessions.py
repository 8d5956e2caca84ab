"""Sessions of one workspace: create (retiring a phone's stale sessions), read, QR, commands, delete."""

from __future__ import annotations

import base64
import binascii
import io

import segno

from functions.api import errors
from shared.commands import (
    Command,
    LogoutCommand,
    RequestPairingCodeCommand,
    RestartCommand,
    StopCommand,
    enqueue_command,
)
from shared.events import SessionStatus
from shared.ids import new_id
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import SessionRecord

# No commands for these: the session is over (a new one must be created).
FINISHED = frozenset({SessionStatus.RETIRED})
# Sending needs a session that can still come (or is) online.
CANNOT_SEND = frozenset({SessionStatus.RETIRED, SessionStatus.LOGGED_OUT, SessionStatus.STOPPED, SessionStatus.FAILED})
CONNECTED = frozenset({SessionStatus.AUTHENTICATED, SessionStatus.READY})


async def owned_session(workspace_id: str, session_id: str) -> SessionRecord:
    """The session if it exists, is not deleted and belongs to the workspace; otherwise NotFound."""
    record = await sessions.get_session(get_redis(), session_id)
    if record is None or record.workspace_id != workspace_id or record.deleted_at_ms is not None:
        raise errors.NotFound("session", session_id)
    return record


async def create_session(workspace_id: str, name: str, phone: str | None) -> tuple[SessionRecord, list[str]]:
    redis = get_redis()
    record = SessionRecord(id=new_id("ses"), workspace_id=workspace_id, name=name, phone=phone)
    if not phone:
        return await sessions.create_session(redis, record), []
    outcome = await sessions.create_session_for_phone(redis, record)
    if outcome.record is None:
        raise errors.Conflict(
            f"phone {phone} already has a connected session ({outcome.conflict_session_id}); "
            "log it out or delete it first"
        )
    for retired in outcome.retired_session_ids:
        await enqueue_command(redis, StopCommand(session_id=retired, reason=sessions.RETIRED_REASON))
    return outcome.record, outcome.retired_session_ids


def encode_cursor(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, session_id = raw.split(":", 1)
        if not session_id:
            raise ValueError("empty id")
        return int(score), session_id
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise errors.InvalidRequest("the cursor is not one this API returned") from exc


async def list_sessions(
    workspace_id: str, *, limit: int, cursor: str | None, status: list[SessionStatus] | None
) -> tuple[list[SessionRecord], str | None]:
    page = await sessions.list_workspace_sessions(
        get_redis(),
        workspace_id,
        limit=min(limit, get_settings().api_page_size_max),
        after=decode_cursor(cursor) if cursor else None,
        statuses=frozenset(status) if status else None,
    )
    return page.records, encode_cursor(page.next_after) if page.next_after else None


def qr_png(qr: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(qr, error="l").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


async def current_qr_png(workspace_id: str, session_id: str, scale: int) -> bytes:
    record = await owned_session(workspace_id, session_id)
    if not record.qr:
        raise errors.NotAvailable(f"session {session_id} has no QR to scan (status {record.status.value})")
    return qr_png(record.qr, scale)


async def _command(workspace_id: str, session_id: str, command: Command) -> Command:
    await enqueue_command(get_redis(), command)
    return command


async def request_pairing_code(workspace_id: str, session_id: str, phone: str | None) -> Command:
    record = await owned_session(workspace_id, session_id)
    number = phone or record.phone
    if not number:
        raise errors.InvalidInput("the session has no phone number: give one", field="phone")
    if record.status in CONNECTED:
        raise errors.Conflict(f"session {session_id} is already connected")
    if record.status in FINISHED:
        raise errors.Conflict(f"session {session_id} is {record.status.value}; create a new one")
    return await _command(workspace_id, session_id, RequestPairingCodeCommand(session_id=session_id, phone=number))


async def restart(workspace_id: str, session_id: str) -> Command:
    record = await owned_session(workspace_id, session_id)
    if record.status in FINISHED:
        raise errors.Conflict(f"session {session_id} is {record.status.value}; create a new one")
    return await _command(workspace_id, session_id, RestartCommand(session_id=session_id))


async def logout(workspace_id: str, session_id: str) -> Command:
    record = await owned_session(workspace_id, session_id)
    if record.status in FINISHED or record.status is SessionStatus.LOGGED_OUT:
        raise errors.Conflict(f"session {session_id} is {record.status.value}; nothing to log out")
    return await _command(workspace_id, session_id, LogoutCommand(session_id=session_id))


async def delete(workspace_id: str, session_id: str) -> None:
    """Tombstone the session (cleanup purges it later) and tell its worker to stop driving it."""
    redis = get_redis()
    for _ in range(5):
        record = await owned_session(workspace_id, session_id)
        if await sessions.soft_delete_session(redis, record, reason="deleted"):
            await enqueue_command(redis, StopCommand(session_id=session_id, reason="deleted"))
            return
    raise errors.Conflict(f"session {session_id} keeps changing; try again")
