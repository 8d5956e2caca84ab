"""Ingest's problem map: its domain errors (`functions.ingest.errors`) to RFC 9457 problems.

The machinery (problem documents, validation/routing/500 handling) is `shared.problems`, shared with the API.
Producers (the session workers' outbox, `shared.producer`) act on the status and `Retry-After`; the body is
for people reading their dead letters.
"""

from __future__ import annotations

from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError

from functions.ingest import errors
from shared import problems as shared_problems
from shared.problems import Extras, ProblemMap, ProblemType

DOMAIN_PROBLEMS: dict[type[Exception], ProblemType] = {
    errors.Unauthenticated: ProblemType(401, "bad-signature", "Signature not accepted"),
    errors.PayloadTooLarge: ProblemType(413, "payload-too-large", "Payload too large"),
    errors.InvalidBatch: ProblemType(422, "invalid-batch", "Invalid event batch"),
    errors.UnknownTenant: ProblemType(422, "unknown-tenant", "Unknown workspace or session"),
    errors.QueueUnavailable: ProblemType(503, "queue-unavailable", "Deliveries queue unavailable"),
    # The producer retries the batch; what this attempt admitted was released (or lapses: see logic).
    RedisConnectionError: ProblemType(503, "store-unavailable", "Data store unavailable"),
    RedisTimeoutError: ProblemType(503, "store-unavailable", "Data store unavailable"),
    # Redis at maxmemory (noeviction, infra/components/redis.py) refuses writes: nothing changed, try later.
    OutOfMemoryError: ProblemType(503, "store-full", "Data store full"),
}


def _extras(exc: Exception) -> Extras:
    return Extras(members=dict(exc.extra)) if isinstance(exc, errors.IngestError) else Extras()


INGEST_PROBLEMS = ProblemMap(DOMAIN_PROBLEMS, _extras)


def install(app: FastAPI) -> None:
    shared_problems.install(app, INGEST_PROBLEMS)
