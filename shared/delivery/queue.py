"""The deliveries-queue message: one event for one tenant endpoint, and how it is put on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared import aws


def delivery_id_for(event_id: str, endpoint_id: str) -> str:
    """Deterministic, so a re-enqueued fan-out of the same event names the same delivery."""
    return f"dlv_{event_id.removeprefix('evt_')}_{endpoint_id.removeprefix('ep_')}"


class DeliveryMessage(BaseModel):
    """The body of a deliveries-queue (and DLQ) message."""

    delivery_id: str
    workspace_id: str
    endpoint_id: str
    event: dict[str, Any]
    attempt: int = Field(default=1, ge=1)
    first_attempt_at: datetime | None = None
    enqueued_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Set when the deliver function dead-letters it; seen again on the live queue means "redriven".
    dead_lettered_at: datetime | None = None
    # Attempt number at which the current attempt budget began (moves forward on redrive).
    budget_start: int = Field(default=1, ge=1)
    # Times this message was put back because Redis did not answer (not attempts: the tenant saw nothing).
    outage_requeues: int = Field(default=0, ge=0)

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def event_type(self) -> str:
        return str(self.event["type"])


class EnqueueError(Exception):
    """SQS did not take every message; `failed_ids` are the delivery ids not enqueued."""

    def __init__(self, failed_ids: list[str], detail: str) -> None:
        super().__init__(f"{len(failed_ids)} deliveries not enqueued: {detail}")
        self.failed_ids = failed_ids


def send_batch(queue_url: str, messages: Sequence[DeliveryMessage], delay_seconds: int = 0) -> None:
    """SendMessageBatch up to 10 at a time; raise EnqueueError naming what SQS did not take."""
    failed: list[str] = []
    detail = ""
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries: list[dict[str, Any]] = [
            {"Id": str(i), "MessageBody": m.model_dump_json(), "DelaySeconds": delay_seconds}
            for i, m in enumerate(chunk)
        ]
        try:
            response = aws.sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as exc:  # every SQS failure means "not enqueued"
            failed.extend(m.delivery_id for m in chunk)
            detail = str(exc)
            continue
        for failure in response.get("Failed", []):
            failed.append(chunk[int(failure["Id"])].delivery_id)
            detail = failure.get("Message", failure.get("Code", "failed"))
    if failed:
        raise EnqueueError(failed, detail)


def dead_letter_attributes(
    message: DeliveryMessage, reason: str, last_status: int | None, attempts: int
) -> dict[str, dict[str, str]]:
    """The DLQ message's attributes: why, the last HTTP status, how many attempts, and when."""

    def text(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value}

    def number(value: int) -> dict[str, str]:
        return {"DataType": "Number", "StringValue": str(value)}

    attributes = {
        "reason": text(reason),
        "attempts": number(attempts),
        "last_status": number(last_status) if last_status is not None else text("none"),
        "first_attempt_at": text(message.first_attempt_at.isoformat() if message.first_attempt_at else "none"),
        "dead_lettered_at": text(message.dead_lettered_at.isoformat() if message.dead_lettered_at else "none"),
        "workspace_id": text(message.workspace_id),
        "endpoint_id": text(message.endpoint_id),
    }
    return attributes


def send_dead_letter(
    dlq_url: str, message: DeliveryMessage, reason: str, last_status: int | None, attempts: int
) -> None:
    """Put a dead-lettered delivery (its `dead_lettered_at` set) on the DLQ, with its attributes."""
    aws.sqs().send_message(
        QueueUrl=dlq_url,
        MessageBody=message.model_dump_json(),
        MessageAttributes=dead_letter_attributes(message, reason, last_status, attempts),
    )
