"""Run a Lambda handler in-process the way the Lambda runtime does: one thread with its own event loop,
reused across invocations, fed the same event shapes AWS sends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 60_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def _give_thread_a_loop() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())


class LocalLambda:
    """One execution environment: invocations run one at a time, on a thread that keeps its loop."""

    def __init__(self, name: str, handler: Handler, *, timeout_ms: int = 60_000) -> None:
        self.name = name
        self.handler = handler
        self.timeout_ms = timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, initializer=_give_thread_a_loop, thread_name_prefix=name)

    def _context(self) -> LambdaContext:
        return LambdaContext(function_name=self.name, timeout_ms=self.timeout_ms)

    def invoke_sync(self, event: dict[str, Any]) -> Any:
        return self._executor.submit(self.handler, event, self._context()).result()

    async def invoke(self, event: dict[str, Any]) -> Any:
        return await asyncio.wrap_future(self._executor.submit(self.handler, event, self._context()))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
