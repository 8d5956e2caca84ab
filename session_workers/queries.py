"""Reads through the owning worker: "is this number on WhatsApp", chats, a chat's history, groups and their members.

The API puts a `ReadCommand` on the session's command stream and waits (bounded) on a reply list
(`shared.store.reads`). Sends are paced in the command loop (seconds apart), so a read that waited its turn there
could wait minutes behind a burst: each session also follows its command stream with a plain XREAD (`watch`, no
consumer group) and answers reads the moment they arrive. The command loop still gets every read through the
group; its dispatch (`on_command`) acknowledges it and answers only what the watcher has not taken (a read queued
before the watcher started, or one a previous owner left pending). A read that is no longer awaited
(`expires_at_ms` passed) is skipped: it has no effect, so nothing is lost by dropping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from session_workers.driver import PageRefused, WhatsAppDriver, page_closed
from session_workers.inbound import media_id_for, moment
from session_workers.ownership import REDIS_UNAVAILABLE
from shared import redis_keys as keys
from shared.commands import ReadCommand, parse_command
from shared.observability import logger
from shared.store import reads

if TYPE_CHECKING:
    from session_workers.session import BrowserSession

READS_AT_ONCE = 2  # per session: a page answers one evaluate at a time anyway
# How long one blocking read of a session's command stream waits (the read watcher's XREAD here, the command loop's
# XREADGROUP in session.py). A command ends the wait at once and a stopping session cancels the read, so the length
# only sets how often an idle session asks Redis again: at 1 s, these two reads were 2 of the ~5 Redis commands a
# second an idle session cost, and most of an idle worker's CPU (docs/benchmarks.md, Scale). It must stay well
# under the client's socket timeout (redis-py's default, 5 s), or an idle read ends in a TimeoutError.
COMMAND_BLOCK_MS = 3000
WATCH_RETRY_SECONDS = 0.5
READY_MARGIN_SECONDS = 0.5  # a read waiting for the page gives up this long before the asker does, and says why
# wa-js's error codes -> what the API answers (chat/functions/getMessages.ts and group/functions/ensureGroup.ts
# throw chat_not_found / not_a_group; assertWid invalid_wid; the simulator's not_authenticated).
REFUSALS = {
    "chat_not_found": "not_found",
    "not_a_group": "not_found",
    "group_not_found": "not_found",
    "invalid_wid": "invalid",
    "not_authenticated": "not_ready",
    "cursor_gone": "bad_cursor",
}


class _State:
    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(READS_AT_ONCE)
        self.taken: deque[str] = deque(maxlen=1024)


_states: WeakKeyDictionary[BrowserSession, _State] = WeakKeyDictionary()


def _state(session: BrowserSession) -> _State:
    state = _states.get(session)
    if state is None:
        state = _states[session] = _State()
    return state


def _take(session: BrowserSession, command: ReadCommand) -> bool:
    """True for the first of the watcher and the command loop to reach this read (same event loop: no race)."""
    taken = _state(session).taken
    if command.request_id in taken:
        return False
    taken.append(command.request_id)
    return True


async def on_command(session: BrowserSession, entry_id: str, command: ReadCommand) -> None:
    """The command loop's dispatch: acknowledge at once (a read changes nothing), answer unless already taken."""
    await session.worker.ownership.emit(session.lease, None, ack_command=entry_id)
    if _take(session, command):
        session._spawn_aside(answer(session, command), "read")


async def watch(session: BrowserSession) -> None:
    """Answer reads as they arrive on the command stream, whatever the command loop is busy with."""
    stream = keys.session_commands(session.id)
    last = "$"
    while not session.stopping:
        try:
            response: Any = await session.worker.redis.xread({stream: last}, count=50, block=COMMAND_BLOCK_MS)
        except REDIS_UNAVAILABLE:
            await asyncio.sleep(WATCH_RETRY_SECONDS)
            continue
        except Exception as exc:  # never the session's end: the command loop still answers reads
            logger.warning("read watcher: xread failed", extra={"session_id": session.id, "error": repr(exc)})
            await asyncio.sleep(WATCH_RETRY_SECONDS)
            continue
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                last = entry_id
                command = _read_command(fields)
                if command is not None and _take(session, command):
                    session._spawn_aside(answer(session, command), "read")


def _read_command(fields: dict[str, str]) -> ReadCommand | None:
    if '"type":"read"' not in fields.get("command", ""):
        return None
    try:
        command = parse_command(fields)
    except Exception:
        return None  # the command loop reports unreadable commands
    return command if isinstance(command, ReadCommand) else None


async def answer(session: BrowserSession, command: ReadCommand) -> None:
    """Run the read on the page and push the answer, unless nobody waits for it any more."""
    async with _state(session).slots:
        remaining = command.expires_at_ms / 1000 - time.time()
        if remaining <= 0:
            return
        try:
            reply = await asyncio.wait_for(_reply(session, command, remaining), remaining)
        except TimeoutError:
            return  # the asker has answered 504 already
        await reads.answer(session.worker.redis, command.request_id, reply)


async def _reply(session: BrowserSession, command: ReadCommand, remaining: float) -> dict[str, Any]:
    # A takeover's page is still restoring when it finds the reads left pending: wait for it while the asker does.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.ready.wait(), max(remaining - READY_MARGIN_SECONDS, 0))
    driver = session.driver
    if driver is None or not session.ready.is_set():
        return refused("not_ready", f"the session is not connected to WhatsApp (status {_status(session)})")
    try:
        return {"ok": True, "result": await run(driver, command)}
    except PageRefused as exc:
        return refused(REFUSALS.get(exc.code, "failed"), str(exc))
    except Exception as exc:
        # A page that went away under the read (a browser crash is seen by the session a moment later): as for a
        # send, the session is not connected right now; the asker may retry once it is back.
        if not session.ready.is_set() or page_closed(exc):
            return refused("not_ready", "the session lost its connection to WhatsApp while reading")
        logger.warning("read failed", extra={"session_id": session.id, "query": command.query, "error": repr(exc)})
        return refused("failed", f"the page could not answer: {str(exc)[:200]}")


def _status(session: BrowserSession) -> str:
    return session.status.value if session.status is not None else "starting"


def refused(reason: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "error": reason, "detail": detail}


async def run(driver: WhatsAppDriver, command: ReadCommand) -> dict[str, Any]:
    target = command.target or ""
    if command.query == "contact":
        return contact_result(target, await driver.check_contact(target))
    if command.query == "chats":
        return await _chats(driver, command)
    if command.query == "messages":
        return await _messages(driver, command, target)
    if command.query == "groups":
        groups = sorted(await driver.groups(), key=lambda g: str(g["id"]))
        return _page_by_id([group_out(g) for g in groups], command)
    members = sorted(await driver.group_participants(target), key=lambda p: str(p["id"]))
    return _page_by_id(members, command)


def contact_result(phone: str, found: dict[str, Any]) -> dict[str, Any]:
    if not found.get("exists"):
        return {"phone": phone, "on_whatsapp": False, "chat_id": None, "lid": None, "business": False}
    return {
        "phone": phone,
        "on_whatsapp": True,
        "chat_id": found.get("wid"),
        "lid": found.get("lid"),
        "business": bool(found.get("biz")),
        "verified_name": found.get("verified_name"),
    }


async def _chats(driver: WhatsAppDriver, command: ReadCommand) -> dict[str, Any]:
    """wa-js pages chats from a chat, that chat included (chat/functions/list.ts), and starts from the top when
    it no longer knows that chat: ask for one more than the page plus the anchor, and refuse a vanished anchor
    rather than repeat the first page."""
    anchor = command.cursor
    found = await driver.chats(anchor, command.limit + (2 if anchor else 1))
    if anchor:
        if not found or found[0]["id"] != anchor:
            raise PageRefused("cursor_gone", "the chat this page started from is no longer listed; start again")
        found = found[1:]
    page = found[: command.limit]
    more = len(found) > command.limit
    items = [chat_out(command.session_id, c) for c in page]
    return {"items": items, "next_cursor": page[-1]["id"] if more and page else None}


async def _messages(driver: WhatsAppDriver, command: ReadCommand, chat: str) -> dict[str, Any]:
    """Newest first; each page is older than the last. wa-js returns them oldest first, the anchor excluded."""
    found = await driver.chat_messages(chat, command.cursor, command.limit + 1)
    more = len(found) > command.limit
    page = found[-command.limit :]
    session_id = command.session_id
    return {
        "items": [message_out(session_id, m) for m in reversed(page)],
        "next_cursor": page[0]["id"] if more and page else None,
    }


def _page_by_id(items: list[dict[str, Any]], command: ReadCommand) -> dict[str, Any]:
    """Lists wa-js hands over whole (groups, members): sorted by id, paged after the cursor's id."""
    rest = [i for i in items if command.cursor is None or str(i["id"]) > command.cursor]
    page = rest[: command.limit]
    return {"items": page, "next_cursor": page[-1]["id"] if len(rest) > command.limit else None}


def _stamp(t: Any) -> str | None:
    at = moment(t)
    return at.isoformat() if at else None


def chat_out(session_id: str, chat: dict[str, Any]) -> dict[str, Any]:
    last = chat.get("last")
    return {
        "id": chat["id"],
        "name": chat.get("name"),
        "group": bool(chat.get("group")),
        "unread_count": int(chat.get("unread") or 0),
        "archived": bool(chat.get("archived")),
        "timestamp": _stamp(chat.get("t")),
        "last_message": message_out(session_id, last) if last else None,
    }


def group_out(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": group["id"],
        "name": group.get("name"),
        "participants": group.get("participants"),
        "unread_count": int(group.get("unread") or 0),
        "timestamp": _stamp(group.get("t")),
    }


def message_fields(m: dict[str, Any], media_id: str | None = None) -> dict[str, Any]:
    """A message read back from the page, in the bridge's shape (driver.BRIDGE_JS `shape`)."""
    location = m.get("location")
    media = m.get("media")
    return {
        "id": m["id"],
        "chat_id": m.get("chat"),
        "from": m.get("from"),
        "phone": m.get("phone"),
        "from_me": bool(m.get("fromMe")),
        "kind": m.get("type") or "chat",
        "body": m.get("body") or "",
        "caption": m.get("caption"),
        "timestamp": _stamp(m.get("t")),
        "quoted_message_id": m.get("quoted"),
        "mentions": list(m.get("mentions") or []),
        "location": {"latitude": location["lat"], "longitude": location["lng"], "description": location.get("loc")}
        if location
        else None,
        "media": {
            "id": media_id,
            "mimetype": media.get("mimetype"),
            "size": media.get("size"),
            "filename": media.get("filename"),
        }
        if media
        else None,
        "ack": m.get("ack"),
    }


def message_out(session_id: str, m: dict[str, Any]) -> dict[str, Any]:
    """Inbound media is stored under an id derived from the message (inbound.media_id_for): GET /v1/media/{id}
    resolves it once the worker has stored it. Own media was uploaded by the tenant under its own id."""
    media_id = media_id_for(session_id, str(m["id"])) if m.get("media") and not m.get("fromMe") else None
    return message_fields(m, media_id)
