"""The API's problem map: its domain errors (`functions.api.errors`, plus the foreign ones its logic lets
through) to RFC 9457 problems, and the OpenAPI documentation of problem responses.

The machinery (problem documents, validation/routing/500 handling) is `shared.problems`, shared with ingest;
this module is the one place the API's errors get their HTTP status.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError

from functions.api import errors
from shared import problems as shared_problems
from shared.delivery.queue import EnqueueError
from shared.delivery.replay import DeliveryNotFound, EndpointUnavailable, InvalidCursor
from shared.delivery.urlsafety import UnsafeUrlError
from shared.problems import Extras, ProblemMap, ProblemType, problem_doc

# The map from domain errors to problems. Subclasses are looked up along the MRO.
DOMAIN_PROBLEMS: dict[type[Exception], ProblemType] = {
    errors.InvalidRequest: ProblemType(400, "bad-request", "Bad request"),
    errors.Unauthenticated: ProblemType(401, "unauthenticated", "Authentication required"),
    errors.MissingScope: ProblemType(403, "forbidden", "Missing scope"),
    errors.NotFound: ProblemType(404, "not-found", "Not found"),
    errors.Conflict: ProblemType(409, "conflict", "Conflict"),
    errors.NotAvailable: ProblemType(409, "not-available", "Not available"),
    errors.BodyTooLarge: ProblemType(413, "body-too-large", "Request body too large"),
    errors.InvalidInput: ProblemType(422, "invalid-input", "Invalid input"),
    UnsafeUrlError: ProblemType(422, "unsafe-url", "Webhook URL refused"),
    errors.RateLimited: ProblemType(429, "rate-limited", "Too many requests"),
    errors.ReadFailed: ProblemType(502, "read-failed", "WhatsApp Web could not answer"),
    errors.WorkerUnavailable: ProblemType(503, "worker-unavailable", "No worker drives the session"),
    errors.WorkerTimeout: ProblemType(504, "worker-timeout", "The session's worker did not answer in time"),
    # The delivery store's domain errors (shared.delivery.replay)
    InvalidCursor: ProblemType(400, "bad-request", "Bad request"),
    DeliveryNotFound: ProblemType(404, "not-found", "Not found"),
    EndpointUnavailable: ProblemType(409, "endpoint-unavailable", "Endpoint unavailable"),
    EnqueueError: ProblemType(503, "queue-unavailable", "Delivery queue unavailable"),
    # Infrastructure
    RedisConnectionError: ProblemType(503, "store-unavailable", "Data store unavailable"),
    # A timeout is not "nothing changed": the command may have reached Redis and run after the client gave up
    # (a paused or failing-over primary runs what is in its socket when it resumes).
    RedisTimeoutError: ProblemType(
        503,
        "store-timeout",
        "Data store did not answer in time",
        detail="the data store did not answer in time, so whether the request took effect is unknown: repeat it "
        "(a send repeated with the same client_message_id is carried out once)",
    ),
    # Redis at maxmemory (noeviction, infra/components/redis.py) refuses writes: nothing changed, try later.
    OutOfMemoryError: ProblemType(503, "store-full", "Data store full"),
}


def _extras(exc: Exception) -> Extras:
    extras = Extras()
    if isinstance(exc, errors.Unauthenticated):
        extras.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.WorkerUnavailable):
        extras.headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, errors.RateLimited):
        extras.headers["Retry-After"] = str(exc.retry_after_seconds)
        extras.members["retry_after"] = exc.retry_after_seconds
    if isinstance(exc, errors.InvalidInput) and exc.field:
        extras.members["errors"] = [{"field": exc.field, "message": exc.detail}]
    if isinstance(exc, UnsafeUrlError):
        extras.members["errors"] = [{"field": "url", "message": str(exc)}]
    return extras


API_PROBLEMS = ProblemMap(DOMAIN_PROBLEMS, _extras)
problem_for = API_PROBLEMS.problem_for
problems_for_error = API_PROBLEMS.response_for


def install(app: FastAPI) -> None:
    shared_problems.install(app, API_PROBLEMS)


PROBLEM_DOCS: dict[int, dict[str, Any]] = {
    400: problem_doc("Malformed request"),
    401: problem_doc("Missing or unknown API key"),
    403: problem_doc("The key lacks the scope"),
    404: problem_doc("Not found (or another workspace's)"),
    409: problem_doc("Conflicts with the current state"),
    413: problem_doc("Body too large"),
    422: problem_doc("Validation failed"),
    502: problem_doc("The session's worker answered, but WhatsApp Web could not give it"),
    503: problem_doc(
        "A backing service is unavailable (nothing changed), or did not answer in time (`store-timeout`: the outcome"
        " is unknown; repeat the request, a send with the same client_message_id is carried out once)"
    ),
    504: problem_doc("The session's worker did not answer in time"),
    429: problem_doc(
        "Send limit reached; retry after the given seconds",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given problem statuses (401/422 are always possible)."""
    return {code: PROBLEM_DOCS[code] for code in sorted({400, 401, 413, 422, *codes})}
