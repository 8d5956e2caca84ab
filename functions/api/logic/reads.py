"""Reads through the worker that owns a session: ask it on the session's command stream and wait a bounded time.

No owner, or an owner without a recent heartbeat, is a 503 at once; no answer within `api_read_timeout_seconds`
is a 504; neither ever hangs. Number checks are answered from the session's cache when they can be, and those that
reach WhatsApp are rate-limited per session (bulk checks get accounts banned).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from typing import Any, Literal

from functions.api import errors
from functions.api.logic.sessions import owned_session
from shared.commands import ReadCommand
from shared.events import SessionStatus
from shared.ids import new_id
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import reads

Query = Literal["contact", "chats", "messages", "groups", "participants"]
# Error codes in a worker's refusal -> the API's domain errors.
REFUSED = {
    "not_found": lambda detail: errors.NotFound("chat", detail),
    "invalid": lambda detail: errors.InvalidInput(detail),
    "not_ready": lambda detail: errors.NotAvailable(detail),
    "bad_cursor": lambda detail: errors.InvalidRequest(detail),
}


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        position = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise errors.InvalidRequest("the cursor is not one this API returned") from exc
    if not position:
        raise errors.InvalidRequest("the cursor is not one this API returned")
    return position


async def ask(
    workspace_id: str,
    session_id: str,
    query: Query,
    *,
    target: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The worker's answer (its `result`), or the domain error that says why there is none."""
    await _driven(workspace_id, session_id)
    result = await _ask_owner(session_id, query, target=target, limit=limit, cursor=cursor)
    if query == "messages":
        await _name_sent_media(session_id, result["items"])
    elif query == "chats":
        await _name_sent_media(session_id, [c["last_message"] for c in result["items"] if c.get("last_message")])
    return result


async def _name_sent_media(session_id: str, messages: list[dict[str, Any]]) -> None:
    """Media the account sent from a tenant's upload is that upload: give it its media id (the page cannot)."""
    unnamed = [m for m in messages if m.get("from_me") and m.get("media") and not m["media"].get("id")]
    found = await reads.sent_media_ids(get_redis(), session_id, [str(m["id"]) for m in unnamed])
    for message in unnamed:
        message["media"]["id"] = found.get(str(message["id"]))


async def _driven(workspace_id: str, session_id: str) -> None:
    """The session is the caller's, connected, and a live worker drives it; else the error, at once."""
    record = await owned_session(workspace_id, session_id)
    if record.status is not SessionStatus.READY:
        raise errors.NotAvailable(f"session {session_id} is not connected to WhatsApp (status {record.status.value})")
    settings = get_settings()
    if not record.owner or not await reads.owner_alive(get_redis(), record.owner, settings.lease_ttl_ms):
        raise errors.WorkerUnavailable(f"no worker drives session {session_id} right now; it is being taken over")


async def _ask_owner(
    session_id: str, query: Query, *, target: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    timeout = get_settings().api_read_timeout_seconds
    command = ReadCommand(
        session_id=session_id,
        request_id=new_id("read"),
        query=query,
        target=target,
        limit=limit,
        cursor=decode_cursor(cursor) if cursor else None,
        expires_at_ms=int((time.time() + timeout) * 1000),
    )
    reply = await reads.ask(get_redis(), command, timeout)
    if reply is None:
        raise errors.WorkerTimeout(f"the worker of session {session_id} did not answer within {timeout:g} s")
    if not reply.get("ok"):
        detail = str(reply.get("detail") or reply.get("error"))
        make = REFUSED.get(str(reply.get("error")))
        raise make(detail) if make else errors.ReadFailed(detail)
    result = dict(reply["result"])
    if result.get("next_cursor"):
        result["next_cursor"] = encode_cursor(str(result["next_cursor"]))
    return result


async def check_contact(workspace_id: str, session_id: str, phone: str) -> dict[str, Any]:
    """From the session's cache, else from WhatsApp within the session's number-check budget (429 past it)."""
    await _driven(workspace_id, session_id)
    redis = get_redis()
    settings = get_settings()
    cached = await reads.cached_contact(redis, session_id, phone)
    if cached is not None:
        return {**cached, "cached": True}
    waiting_ms = await reads.take_contact_check(
        redis, session_id, settings.contact_checks_per_minute, settings.contact_checks_burst
    )
    if waiting_ms:
        raise errors.RateLimited(
            f"session {session_id} checks at most {settings.contact_checks_per_minute:g} new numbers a minute "
            "(bulk checks get WhatsApp accounts banned)",
            retry_after_seconds=max(1, math.ceil(waiting_ms / 1000)),
        )
    found = await _ask_owner(session_id, "contact", target=phone, limit=1, cursor=None)
    ttl = settings.contact_cache_seconds if found.get("on_whatsapp") else settings.contact_cache_missing_seconds
    await reads.cache_contact(redis, session_id, phone, found, ttl)
    return {**found, "cached": False}
