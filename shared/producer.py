"""Posting events to the ingest endpoint as a producer: Standard Webhooks-signed batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum

import httpx
from pydantic import BaseModel

from shared.events import Event, event_to_dict
from shared.ids import new_id
from shared.producer_keys import producer_keys
from shared.settings import get_settings
from shared.signing import sign


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    THROTTLED = "throttled"
    DROPPED = "dropped"
    REJECTED = "rejected"


class EventResult(BaseModel):
    id: str
    outcome: Outcome
    retry_after: int | None = None
    reason: str | None = None


class IngestResponse(BaseModel):
    results: list[EventResult]


class IngestUnavailable(Exception):
    """Ingest answered 5xx, 429 or not at all: the whole batch should be retried later."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IngestRefused(Exception):
    """Ingest refused the batch as a whole (4xx other than 429): retrying it unchanged will not help."""


def encode_batch(events: Sequence[Event]) -> bytes:
    return json.dumps({"events": [event_to_dict(e) for e in events]}, separators=(",", ":")).encode()


def signed_request(events: Sequence[Event]) -> tuple[bytes, dict[str, str]]:
    """Sign once with each producer key (`v1,<sig>` per key in `webhook-signature`).

    The rotation rule, stated here and in docs/deploy.md: producers sign with every key they hold, ingest accepts a
    batch when any signature matches any key it holds. Neither side depends on the keys' order, so a producer and an
    ingest process that read the keys at different steps of a rotation still share one.
    """
    keys = producer_keys()
    body = encode_batch(events)
    headers = sign(list(keys.values()), new_id("batch"), body).as_dict()
    return body, {**headers, "content-type": "application/json"}


async def post_events(
    events: Sequence[Event], *, client: httpx.AsyncClient | None = None, url: str | None = None
) -> IngestResponse:
    """POST one signed batch (up to 100 events); raise IngestUnavailable or IngestRefused on failure."""
    body, headers = signed_request(events)
    target = url or get_settings().ingest_url
    owned = client is None
    http = client or httpx.AsyncClient(timeout=15)
    try:
        response = await http.post(target, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise IngestUnavailable(f"ingest unreachable: {exc!r}") from exc
    finally:
        if owned:
            await http.aclose()
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        raise IngestUnavailable(f"ingest answered {response.status_code}", float(retry_after) if retry_after else None)
    if response.status_code >= 400:
        raise IngestRefused(f"ingest answered {response.status_code}: {response.text[:500]}")
    return IngestResponse.model_validate_json(response.content)
