"""Round-trip coalescing for the hot send path.

Every Redis round trip costs a write and a read system call. Calls to one script are queued; one
pipeline (`shared.scripts.run_many`) per event loop is in flight at a time, and whatever queued up while
it was out goes next as one batch. A lone request waits for nothing (its batch leaves on the next loop
iteration); under load the batches grow by themselves, so N concurrent sends cost about one round trip.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from shared.scripts import run_many

Call = tuple[Sequence[str], Sequence[Any]]


@dataclass
class _LoopState:
    pending: list[tuple[Call, asyncio.Future[Any]]] = field(default_factory=list)
    busy: bool = False  # a flush is scheduled or a pipeline is in flight


class ScriptBatcher:
    def __init__(self, script_name: str, max_batch: int = 500) -> None:
        self.script_name = script_name
        self.max_batch = max_batch
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        future: asyncio.Future[Any] = loop.create_future()
        state.pending.append(((keys, args), future))
        if not state.busy:
            state.busy = True
            loop.call_soon(self._flush, redis, loop, state)
        return await future

    def _flush(self, redis: Redis, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        batch, state.pending = state.pending[: self.max_batch], state.pending[self.max_batch :]
        if batch:
            loop.create_task(self._send(redis, loop, state, batch))
        else:
            state.busy = False

    async def _send(
        self,
        redis: Redis,
        loop: asyncio.AbstractEventLoop,
        state: _LoopState,
        batch: list[tuple[Call, asyncio.Future[Any]]],
    ) -> None:
        try:
            results = await run_many(redis, self.script_name, [call for call, _ in batch])
        except BaseException as exc:  # every waiter hears of it; nothing is lost silently
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._flush(redis, loop, state)  # what queued up meanwhile goes now (or the batcher idles)


message_send = ScriptBatcher("message_send")
