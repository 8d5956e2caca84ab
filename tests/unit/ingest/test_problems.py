"""Ingest's problem map: each domain error is a typed problem; what producers act on stays where they read it."""

from __future__ import annotations

import json

from functions.ingest import errors
from functions.ingest.problems import INGEST_PROBLEMS
from shared.problems import PROBLEM_MEDIA_TYPE


def test_each_ingest_error_has_its_status_and_type() -> None:
    cases = {
        errors.Unauthenticated("x"): (401, "bad-signature"),
        errors.PayloadTooLarge("x"): (413, "payload-too-large"),
        errors.InvalidBatch("x"): (422, "invalid-batch"),
        errors.UnknownTenant("x"): (422, "unknown-tenant"),
        errors.QueueUnavailable("x"): (503, "queue-unavailable"),
    }
    got = {
        type(e).__name__: (INGEST_PROBLEMS.problem_for(e).status, INGEST_PROBLEMS.problem_for(e).slug) for e in cases
    }
    assert got == {type(e).__name__: expected for e, expected in cases.items()}


def test_a_queue_outage_keeps_its_detail_and_failed_events_and_says_when_to_retry() -> None:
    exc = errors.QueueUnavailable("the deliveries queue did not take every event", failed_events=["evt_1"])
    response = INGEST_PROBLEMS.response_for(exc, "/v1/events")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.media_type == PROBLEM_MEDIA_TYPE
    assert json.loads(bytes(response.body)) == {
        "type": "/problems/queue-unavailable",
        "title": "Deliveries queue unavailable",
        "status": 503,
        "detail": "the deliveries queue did not take every event",
        "instance": "/v1/events",
        "failed_events": ["evt_1"],
    }
