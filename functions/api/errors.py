"""Domain errors the API's logic raises. They say what went wrong, never which HTTP status it is:
`functions.api.problems` is the one place that maps them to responses (through `shared.problems`)."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `detail` is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The resource does not exist, or belongs to another workspace (the two are indistinguishable)."""

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(f"{resource} {resource_id!r} not found")
        self.resource = resource


class Unauthenticated(DomainError):
    """No credentials, or credentials that match no live key."""


class MissingScope(DomainError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the {scope!r} scope")
        self.scope = scope


class Conflict(DomainError):
    """The request contradicts the resource's current state."""


class InvalidRequest(DomainError):
    """The request is malformed in a way schema validation cannot see (e.g. a cursor that does not parse)."""


class InvalidInput(DomainError):
    """Well-formed input that is semantically refused (e.g. an unsafe webhook URL)."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class RateLimited(DomainError):
    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class BodyTooLarge(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class NotAvailable(DomainError):
    """What was asked for does not exist right now (e.g. no QR while the session is connected)."""


class WorkerUnavailable(DomainError):
    """No worker drives the session right now (none owns it, or its owner stopped sending heartbeats)."""

    def __init__(self, detail: str, retry_after_seconds: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class WorkerTimeout(DomainError):
    """The session's worker did not answer within the read timeout."""


class ReadFailed(DomainError):
    """The session's worker answered, but WhatsApp Web could not give what was asked."""
