"""Reads through the session's worker: is a number on WhatsApp, chats, a chat's history, groups and members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from functions.api.auth import Principal, ReadScope
from functions.api.logic import reads
from functions.api.models import CHAT_PATTERN, PHONE_PATTERN
from functions.api.problems import problems
from functions.api.read_models import ChatOut, ContactOut, GroupOut, HistoryMessageOut, ParticipantOut, ReadPage

router = APIRouter(prefix="/v1/sessions/{session_id}", tags=["reads"])
GROUP_PATTERN = r"^[0-9]{6,30}(-[0-9]{1,20})?@g\.us$"
READ_PROBLEMS = problems(403, 404, 409, 502, 503, 504)
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=400)]


def _chat(chat: str) -> str:
    return chat if "@" in chat else f"{chat}@c.us"


@router.get("/contacts/{phone}", responses=problems(403, 404, 409, 429, 502, 503, 504))
async def check_contact(
    session_id: str,
    phone: Annotated[str, Path(pattern=PHONE_PATTERN, description="digits with country code, no +")],
    principal: Principal = ReadScope,
) -> ContactOut:
    """Whether the number is on WhatsApp, with its chat id, LID and business flag. Answers are cached per session
    (24 h; 10 min for a number not on WhatsApp); numbers not in the cache count against the session's budget of
    checks (`WAGW_CONTACT_CHECKS_PER_MINUTE`), 429 with Retry-After past it."""
    return ContactOut.model_validate(await reads.check_contact(principal.workspace_id, session_id, phone))


@router.get("/chats", responses=READ_PROBLEMS)
async def list_chats(
    session_id: str, principal: Principal = ReadScope, limit: Limit = 20, cursor: Cursor = None
) -> ReadPage[ChatOut]:
    """The session's chats as WhatsApp orders them (most recent first), with unread counts and the last message."""
    result = await reads.ask(principal.workspace_id, session_id, "chats", limit=limit, cursor=cursor)
    return ReadPage[ChatOut].model_validate(result)


@router.get("/chats/{chat_id}/messages", responses=READ_PROBLEMS)
async def chat_messages(
    session_id: str,
    chat_id: Annotated[str, Path(pattern=CHAT_PATTERN, description="a phone number or a chat id")],
    principal: Principal = ReadScope,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReadPage[HistoryMessageOut]:
    """A chat's history, newest first; `next_cursor` pages further back (as far as WhatsApp Web has synced)."""
    result = await reads.ask(
        principal.workspace_id, session_id, "messages", target=_chat(chat_id), limit=limit, cursor=cursor
    )
    return ReadPage[HistoryMessageOut].model_validate(result)


@router.get("/groups", responses=READ_PROBLEMS)
async def list_groups(
    session_id: str, principal: Principal = ReadScope, limit: Limit = 50, cursor: Cursor = None
) -> ReadPage[GroupOut]:
    """The groups the session's account is in, by id. Send to a group with its id as `to`."""
    result = await reads.ask(principal.workspace_id, session_id, "groups", limit=limit, cursor=cursor)
    return ReadPage[GroupOut].model_validate(result)


@router.get("/groups/{group_id}/participants", responses=READ_PROBLEMS)
async def group_participants(
    session_id: str,
    group_id: Annotated[str, Path(pattern=GROUP_PATTERN)],
    principal: Principal = ReadScope,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ReadPage[ParticipantOut]:
    """A group's members (by id) with their role; `phone` is null for a member WhatsApp shows only by LID."""
    result = await reads.ask(
        principal.workspace_id, session_id, "participants", target=group_id, limit=limit, cursor=cursor
    )
    return ReadPage[ParticipantOut].model_validate(result)
