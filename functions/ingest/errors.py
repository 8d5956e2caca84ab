"""Ingest's domain errors. They say what went wrong, never which HTTP status it is:
`functions.ingest.problems` is the one place that maps them to responses (through `shared.problems`)."""

from __future__ import annotations

from typing import Any


class IngestError(Exception):
    """Base class; `detail` is safe to show to the producer, `extra` become members of the problem document."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthenticated(IngestError):
    """The batch's Standard Webhooks signature does not verify with any producer key."""


class PayloadTooLarge(IngestError):
    pass


class InvalidBatch(IngestError):
    """Not JSON, or not a valid event batch (`errors`: the fields, as `[{field, message}]`)."""


class UnknownTenant(IngestError):
    """An event names a workspace that does not exist, or a session not in its workspace."""


class QueueUnavailable(IngestError):
    """The deliveries queue did not take every delivery (`failed_events`: the events to post again)."""
