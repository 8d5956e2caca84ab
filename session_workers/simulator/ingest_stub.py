"""A stand-in for the ingest endpoint (tests, benchmarks, `make run` before ingest exists): verifies the Standard
Webhooks signature with the producer keys, records events (deduplicated by id), and can be told to answer
503 / 429 or to throttle an event type, to exercise the worker's retries.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.settings import get_settings
from shared.signing import SignatureError, verify


class IngestStub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: dict[str, str] | None = None) -> None:
        self.keys = keys or {n: s.get_secret_value() for n, s in get_settings().producer_keys.items()}
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.batches = 0
        self.refused_signatures = 0
        self._failures: list[tuple[int, float | None]] = []
        self.throttle: dict[str, tuple[int, int]] = {}  # event type -> (times left, retry_after)
        self.answers: Counter[int] = Counter()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, payload, headers = stub._answer({k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/v1/events"
        self._thread = threading.Thread(target=self.server.serve_forever, name="ingest-stub", daemon=True)

    def start(self) -> IngestStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> IngestStub:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        with self.lock:
            self._failures.extend([(status, retry_after)] * count)

    def throttle_type(self, event_type: str, times: int, retry_after: int = 1) -> None:
        with self.lock:
            self.throttle[event_type] = (times, retry_after)

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.batches += 1
            if self._failures:
                status, retry_after = self._failures.pop(0)
                self.answers[status] += 1
                return status, {"error": "simulated"}, ({"retry-after": str(retry_after)} if retry_after else {})
        try:
            verify(self.keys, headers, body)
        except SignatureError as exc:
            with self.lock:
                self.refused_signatures += 1
                self.answers[401] += 1
            return 401, {"error": str(exc)}, {}
        results = []
        with self.lock:
            self.answers[200] += 1
            for event in json.loads(body)["events"]:
                left, retry_after = self.throttle.get(event["type"], (0, 0))
                if left > 0:
                    self.throttle[event["type"]] = (left - 1, retry_after)
                    results.append({"id": event["id"], "outcome": "throttled", "retry_after": retry_after})
                    continue
                self.seen[event["id"]] += 1
                if self.seen[event["id"]] > 1:
                    results.append({"id": event["id"], "outcome": "duplicate"})
                    continue
                event["_received_at"] = time.time()
                self.events.append(event)
                results.append({"id": event["id"], "outcome": "accepted"})
        return 200, {"results": results}, {}

    # --- reading -------------------------------------------------------------------------------------
    def select(self, event_type: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e
                for e in self.events
                if (event_type is None or e["type"] == event_type)
                and (session_id is None or e["session_id"] == session_id)
            ]

    def statuses(self, session_id: str) -> list[str]:
        return [e["data"]["status"] for e in self.select("session.status", session_id)]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}")
