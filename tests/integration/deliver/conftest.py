"""Delivery test helpers: a real HTTP receiver on 127.0.0.1 that verifies Standard Webhooks signatures with the
`standardwebhooks` package, endpoints in Redis, and a local poller feeding the handler real SQS events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from functions.deliver.handler import handler
from shared import aws
from shared.delivery.queue import DeliveryMessage, delivery_id_for
from shared.signing import generate_secret
from shared.store.records import EndpointRecord, EndpointSecret
from wagw_local.sqs_runner import PollResult, SqsPoller

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[int]  # indexes of the receiver's secrets whose signature checks out
    status: int


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 0.0


class Receiver:
    """A tenant webhook receiver. `reply` decides each answer; every request (and TCP connection) is recorded."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.received: list[Received] = []
        self.connections = 0
        self.reply: Callable[[Received], Reply] = lambda _: Reply()
        self._lock = threading.Lock()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = []
                for index, secret in enumerate(receiver.secrets):
                    try:
                        Webhook(secret).verify(body, headers)
                        verified.append(index)
                    except WebhookVerificationError:
                        pass
                probe = Received(self.path, headers, body, verified, 0)
                reply = receiver.reply(probe)
                if reply.stall_seconds:
                    time.sleep(reply.stall_seconds)
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, verified, reply.status))
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                with receiver._lock:
                    receiver.connections += 1
                super().process_request(request, client_address)

        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([generate_secret(), generate_secret()])
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fast_schedule(env: pytest.MonkeyPatch) -> None:
    """A compressed schedule and a short timeout, so retries happen within seconds."""
    env.setenv("WAGW_RETRY_SCHEDULE_SECONDS", "[1, 1]")
    env.setenv("WAGW_RETRY_JITTER", "0")
    env.setenv("WAGW_DELIVERY_TIMEOUT_SECONDS", "1")
    env.setenv("WAGW_BREAKER_FAILURE_THRESHOLD", "50")
    from tests.conftest import refresh_settings

    refresh_settings()


def make_endpoint(
    receiver: Receiver, workspace_id: str = "ws_1", endpoint_id: str = "ep_1", **extra: Any
) -> EndpointRecord:
    return EndpointRecord(
        id=endpoint_id,
        workspace_id=workspace_id,
        url=f"{receiver.url}/hooks/{endpoint_id}",
        secrets=[EndpointSecret(secret=s) for s in receiver.secrets],
        **extra,
    )


def event_fixture(event_id: str = "evt_01", workspace_id: str = "ws_1") -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / "message_received_event.json").read_text())
    event["id"] = event_id
    event["workspace_id"] = workspace_id
    return event


def make_message(endpoint: EndpointRecord, event_id: str = "evt_01", **extra: Any) -> DeliveryMessage:
    return DeliveryMessage(
        delivery_id=delivery_id_for(event_id, endpoint.id),
        workspace_id=endpoint.workspace_id,
        endpoint_id=endpoint.id,
        event=event_fixture(event_id, endpoint.workspace_id),
        **extra,
    )


def enqueue(queue_url: str, *messages: DeliveryMessage) -> None:
    for message in messages:
        aws.sqs().send_message(QueueUrl=queue_url, MessageBody=message.model_dump_json())


async def drain(poller: SqsPoller, until: Callable[[], bool], within: float = 20.0) -> list[PollResult]:
    """Poll (as Lambda's event source mapping would) until `until()` holds; fail the test on timeout.

    The handler runs in a worker thread, as in Lambda it owns its event loop."""
    results: list[PollResult] = []
    deadline = time.monotonic() + within
    while not until():
        assert time.monotonic() < deadline, f"condition not met within {within}s; polls: {results[-5:]}"
        results.append(await asyncio.to_thread(poller.poll_once, 1))
    return results


def dlq_messages(dlq_url: str, wait: int = 1) -> list[dict[str, Any]]:
    response = aws.sqs().receive_message(
        QueueUrl=dlq_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageAttributeNames=["All"],
        VisibilityTimeout=0,
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


@pytest.fixture
def poller(queues: Any) -> SqsPoller:
    return SqsPoller(handler, queues.deliveries_url, function_name="deliver")
