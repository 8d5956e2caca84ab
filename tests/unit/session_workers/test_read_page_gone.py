"""A read whose page goes away under it (a browser crash while the session still counts as ready) is answered
`not_ready` (the API's 'not available right now'), as a send in that case stays pending, not `failed`."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from session_workers import queries
from shared.commands import ReadCommand


class TargetClosedError(Exception):
    """Playwright's error when the page, its context or the browser closed under a call (not exported by it)."""


class GoneDriver:
    async def chats(self, *_: Any) -> list[dict[str, Any]]:
        raise TargetClosedError("Target page, context or browser has been closed")


class RefusingDriver:
    async def chats(self, *_: Any) -> list[dict[str, Any]]:
        raise RuntimeError("TypeError: WPP.chat.list is not a function")


def ready_session(driver: Any) -> Any:
    ready = asyncio.Event()
    ready.set()
    return SimpleNamespace(ready=ready, driver=driver, status=None, id="sess_read")


def chats_read() -> ReadCommand:
    return ReadCommand(
        session_id="sess_read", request_id="rd_1", query="chats", limit=10, expires_at_ms=int(time.time() * 1000) + 5000
    )


async def test_a_read_whose_page_went_away_is_answered_not_ready() -> None:
    # Given a ready session whose page closes under the read
    reply = await queries._reply(ready_session(GoneDriver()), chats_read(), 5.0)
    # Then the asker hears the session is not connected right now (retry later), not that the read failed
    assert reply["ok"] is False and reply["error"] == "not_ready"


async def test_a_read_the_healthy_page_cannot_answer_still_fails() -> None:
    reply = await queries._reply(ready_session(RefusingDriver()), chats_read(), 5.0)
    assert reply["ok"] is False and reply["error"] == "failed"
