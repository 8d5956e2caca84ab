"""Round-trip coalescing for the hot send path.

Every Redis round trip costs a write and a read system call; on a busy process with many requests in
flight, the calls to one script made in the same event-loop turn go out as one pipeline
(`shared.scripts.run_many`), so N concurrent sends cost one round trip instead of N. A lone request
waits for nothing: its batch is flushed on the next loop iteration.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from shared.scripts import run_many

Call = tuple[Sequence[str], Sequence[Any]]


class ScriptBatcher:
    def __init__(self, script_name: str, max_batch: int = 256) -> None:
        self.script_name = script_name
        self.max_batch = max_batch
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[tuple[Call, asyncio.Future[Any]]]]
        self._pending = weakref.WeakKeyDictionary()

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        pending.append(((keys, args), future))
        if len(pending) == 1:
            loop.call_soon(self._flush, redis, loop)
        elif len(pending) >= self.max_batch:
            self._flush(redis, loop)
        return await future

    def _flush(self, redis: Redis, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if batch:
            loop.create_task(self._send(redis, batch))

    async def _send(self, redis: Redis, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            results = await run_many(redis, self.script_name, [call for call, _ in batch])
        except BaseException as exc:  # every waiter hears of it; nothing is lost silently
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


message_send = ScriptBatcher("message_send")
