"""The single error map: domain errors to RFC 9457 problems, and the OpenAPI document says so."""

from __future__ import annotations

import json

from functions.api import errors
from functions.api.app import create_app
from functions.api.problems import problem_for, problems_for_error
from shared.delivery.replay import DeliveryNotFound, EndpointUnavailable, InvalidCursor
from shared.delivery.urlsafety import UnsafeUrlError
from shared.problems import INTERNAL, PROBLEM_MEDIA_TYPE


def test_each_domain_error_has_its_status() -> None:
    cases = {
        errors.InvalidRequest("x"): 400,
        errors.Unauthenticated("x"): 401,
        errors.MissingScope("send"): 403,
        errors.NotFound("session", "s"): 404,
        errors.Conflict("x"): 409,
        errors.NotAvailable("x"): 409,
        errors.BodyTooLarge(10): 413,
        errors.InvalidInput("x"): 422,
        UnsafeUrlError("x"): 422,
        errors.RateLimited("x", 3): 429,
        InvalidCursor("x"): 400,
        DeliveryNotFound("d"): 404,
        EndpointUnavailable("e", "disabled"): 409,
    }
    assert {type(e).__name__: problem_for(e).status for e in cases} == {type(e).__name__: s for e, s in cases.items()}


def test_an_unknown_exception_is_an_internal_error() -> None:
    assert problem_for(KeyError("x")) is INTERNAL


def test_a_rate_limit_problem_carries_retry_after_in_header_and_body() -> None:
    response = problems_for_error(errors.RateLimited("slow down", 7), "/v1/sessions/s/messages")
    body = json.loads(bytes(response.body))
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.media_type == PROBLEM_MEDIA_TYPE
    assert body == {
        "type": "/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "slow down",
        "instance": "/v1/sessions/s/messages",
        "retry_after": 7,
    }


def test_every_documented_error_response_is_problem_json() -> None:
    schema = create_app().openapi()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) >= 30
    for operation in operations:
        responses = operation["responses"]
        assert {"401", "422"} <= set(responses), operation["operationId"]
        for status, response in responses.items():
            if int(status) >= 400:
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (operation["operationId"], status)


def test_every_v1_operation_needs_a_key() -> None:
    schema = create_app().openapi()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            assert operation.get("security"), path
