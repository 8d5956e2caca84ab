"""A local tenant webhook receiver: verifies Standard Webhooks signatures, records and prints events.

Used by `wagw receive`, `make run`, the end-to-end tests and benchmarks. It can be told to fail
(answer a status, or be down) to exercise retries.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from shared.signing import SignatureError, verify


@dataclass
class ReceivedEvent:
    webhook_id: str
    body: dict[str, Any]
    received_at: float
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""


@dataclass
class ReceiverState:
    secrets: dict[str, str]
    events: list[ReceivedEvent] = field(default_factory=list)
    rejected: int = 0
    refused: int = 0
    fail_with: int | None = None
    on_event: Callable[[ReceivedEvent], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique_ids(self) -> set[str]:
        with self.lock:
            return {e.webhook_id for e in self.events}

    def of_type(self, event_type: str) -> list[ReceivedEvent]:
        with self.lock:
            return [e for e in self.events if e.body.get("type") == event_type]


def create_receiver_app(state: ReceiverState) -> FastAPI:
    app = FastAPI(title="wa-gateway local webhook receiver")

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = await request.body()
        if state.fail_with is not None:
            state.refused += 1
            return Response(status_code=state.fail_with)
        try:
            verify(state.secrets, request.headers, body)
        except SignatureError as exc:
            state.rejected += 1
            return Response(f"bad signature: {exc}", status_code=400)
        event = ReceivedEvent(
            request.headers["webhook-id"], json.loads(body), time.time(), headers=dict(request.headers), raw=body
        )
        with state.lock:
            state.events.append(event)
        if state.on_event:
            state.on_event(event)
        return Response(status_code=204)

    return app


class Receiver:
    """The receiver app served by uvicorn on its own thread; `stop()`/`start()` simulate an outage."""

    def __init__(self, state: ReceiverState, port: int, host: str = "127.0.0.1") -> None:
        self.state = state
        self.port = port
        self.host = host
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def start(self) -> None:
        config = uvicorn.Config(create_receiver_app(self.state), host=self.host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="receiver", daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server and self._thread:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = None

    async def wait_for(self, predicate: Callable[[ReceiverState], bool], within: float = 30.0) -> None:
        try:
            async with asyncio.timeout(within):
                while not predicate(self.state):
                    await asyncio.sleep(0.05)
        except TimeoutError as exc:
            seen = len(self.state.events)
            raise TimeoutError(f"receiver condition not met within {within}s ({seen} events)") from exc
