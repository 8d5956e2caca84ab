"""A local poller that drives an SQS-triggered Lambda handler the way Lambda's event source mapping does.

receive (up to `batch_size`, long poll) -> build the Lambda SQS event -> call `handler(event, context)` ->
delete the records that succeeded. Records named in the response's `batchItemFailures` (or the whole batch,
when the handler raises) are left alone: they reappear after the visibility timeout, and the queue's
redrive policy moves them to the DLQ after maxReceiveCount receives.

    poller = SqsPoller(handler, queue_url, concurrency=4)
    poller.start()            # background threads, each one like a concurrent Lambda invocation
    ...
    poller.stop()
    # or step by step (tests):
    result = poller.poll_once()   # -> PollResult(received, deleted, failed, crashed)

Each thread calls the handler synchronously, as Lambda does. Powertools' async batch processor runs its
records with `asyncio.run` (a new loop per call) unless `LAMBDA_TASK_ROOT` is set, in which case it keeps
one loop per thread, as in a warm Lambda container, and per-loop clients (Redis, httpx) are reused across
invocations. A long-running local process (`make run`, bench/) may set it; tests need not.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import aws
from shared.observability import logger
from shared.settings import get_settings

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalContext:
    """The parts of Lambda's context object handlers and Powertools read."""

    function_name: str = "local"
    timeout_seconds: float = 60.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{get_settings().aws_region}:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attribute -> the Lambda event's spelling."""
    converted: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = value["BinaryValue"]
    return converted


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message (asked for All attributes) as a Lambda SQS event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {k: _lambda_attribute(v) for k, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def build_event(messages: list[dict[str, Any]], queue_arn: str, region: str | None = None) -> dict[str, Any]:
    region = region or get_settings().aws_region
    return {"Records": [to_lambda_record(m, queue_arn, region) for m in messages]}


def failed_ids(response: Any) -> set[str]:
    """Message ids a handler reported as failed (`batchItemFailures`)."""
    if not isinstance(response, dict):
        return set()
    return {str(item["itemIdentifier"]) for item in response.get("batchItemFailures", []) or []}


@dataclass(frozen=True)
class PollResult:
    received: int
    deleted: int
    failed: int
    crashed: bool = False


class SqsPoller:
    def __init__(
        self,
        handler: Handler,
        queue_url: str,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        concurrency: int = 1,
        function_name: str = "local",
        timeout_seconds: float = 60.0,
    ) -> None:
        self.handler = handler
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.concurrency = concurrency
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._arn: str | None = None
        self._lock = threading.Lock()
        # received, deleted, failed: records; crashed: batches whose handler raised; batches: invocations (receives
        # that returned records); empty: receives that returned none
        self.totals = {"received": 0, "deleted": 0, "failed": 0, "crashed": 0, "batches": 0, "empty": 0}

    @property
    def queue_arn(self) -> str:
        if self._arn is None:
            self._arn = aws.queue_arn(self.queue_url)
        return self._arn

    def poll_once(self, wait_seconds: int | None = None) -> PollResult:
        """Receive one batch, invoke the handler with it, delete what succeeded."""
        response = aws.sqs().receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if not messages:
            with self._lock:
                self.totals["empty"] += 1
            return PollResult(0, 0, 0)
        event = build_event(messages, self.queue_arn)
        context = LocalContext(function_name=self.function_name, timeout_seconds=self.timeout_seconds)
        try:
            failed = failed_ids(self.handler(event, context))
        except Exception:  # Lambda: the whole batch failed; every record comes back after the timeout
            logger.exception("handler raised; the whole batch is left for redelivery")
            self._count(len(messages), 0, len(messages), crashed=True)
            return PollResult(len(messages), 0, len(messages), crashed=True)
        done = [m for m in messages if m["MessageId"] not in failed]
        deleted = self._delete(done)
        self._count(len(messages), deleted, len(messages) - len(done))
        return PollResult(len(messages), deleted, len(messages) - len(done))

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        if not messages:
            return 0
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        response = aws.sqs().delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for failure in response.get("Failed", []):
            logger.warning("delete failed; the message will be seen again", extra={"failure": failure})
        return len(response.get("Successful", []))

    def _count(self, received: int, deleted: int, failed: int, crashed: bool = False) -> None:
        with self._lock:
            self.totals["received"] += received
            self.totals["deleted"] += deleted
            self.totals["failed"] += failed
            self.totals["crashed"] += int(crashed)
            self.totals["batches"] += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling, as the event source mapping does
                logger.exception("poll failed")
                self._stop.wait(1)

    def start(self) -> SqsPoller:
        self._stop.clear()
        self.queue_arn  # noqa: B018 - resolve once before the threads start
        self._threads = [
            threading.Thread(target=self._loop, name=f"sqs-poller-{i}", daemon=True) for i in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def __enter__(self) -> SqsPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
