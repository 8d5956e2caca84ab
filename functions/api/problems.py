"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every 4xx/5xx the API sends, whether raised by our logic (`functions.api.errors`), by validation, by
routing or by a bug, leaves through `problem_response` as `application/problem+json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.api import errors
from shared.delivery.queue import EnqueueError
from shared.delivery.replay import DeliveryNotFound, EndpointUnavailable, InvalidCursor
from shared.delivery.urlsafety import UnsafeUrlError
from shared.observability import logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members: `errors`, `retry_after`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI reference naming the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class ProblemType:
    status: int
    slug: str
    title: str


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
    # The delivery store's domain errors (shared.delivery.replay)
    InvalidCursor: ProblemType(400, "bad-request", "Bad request"),
    DeliveryNotFound: ProblemType(404, "not-found", "Not found"),
    EndpointUnavailable: ProblemType(409, "endpoint-unavailable", "Endpoint unavailable"),
    EnqueueError: ProblemType(503, "queue-unavailable", "Delivery queue unavailable"),
    # Infrastructure
    RedisConnectionError: ProblemType(503, "store-unavailable", "Data store unavailable"),
    RedisTimeoutError: ProblemType(503, "store-unavailable", "Data store unavailable"),
}
VALIDATION = ProblemType(422, "validation-failed", "Request validation failed")
MALFORMED_BODY = ProblemType(400, "malformed-body", "Malformed request body")
INTERNAL = ProblemType(500, "internal", "Internal server error")


def problem_for(exc: Exception) -> ProblemType:
    for klass in type(exc).__mro__:
        if klass in DOMAIN_PROBLEMS:
            return DOMAIN_PROBLEMS[klass]
    return INTERNAL


def problem_response(
    kind: ProblemType,
    *,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + kind.slug, title=kind.title, status=kind.status, detail=detail, instance=instance
    ).model_dump(exclude_none=True)
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=kind.status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _domain_problem(request: Request, exc: Exception) -> JSONResponse:
    return problems_for_error(exc, request.url.path)


def problems_for_error(exc: Exception, path: str) -> JSONResponse:
    """The response for any exception (domain, foreign domain, or a bug: 500 without details)."""
    kind = problem_for(exc)
    detail = getattr(exc, "detail", None) or str(exc)
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after_seconds)
        extensions["retry_after"] = exc.retry_after_seconds
    if isinstance(exc, errors.InvalidInput) and exc.field:
        extensions["errors"] = [{"field": exc.field, "message": exc.detail}]
    if isinstance(exc, UnsafeUrlError):
        extensions["errors"] = [{"field": "url", "message": str(exc)}]
    if kind.status >= 500 and kind is not INTERNAL:
        logger.warning("backing service unavailable", path=path, error=f"{type(exc).__name__}: {exc}")
        headers["Retry-After"] = "5"
        detail = f"{kind.title.lower()}; nothing changed, try again"
    if kind is INTERNAL:
        logger.exception("unhandled error", path=path)
        detail = None
    return problem_response(kind, detail=detail, instance=path, headers=headers or None, **extensions)


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = exc.errors()
    if any(e.get("type") == "json_invalid" for e in details):
        return problem_response(MALFORMED_BODY, detail="the body is not valid JSON", instance=request.url.path)
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in details
    ]
    return problem_response(
        VALIDATION, detail="the request does not match the schema", instance=request.url.path, errors=fields
    )


def _http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    kind = ProblemType(exc.status_code, title.lower().replace(" ", "-"), title)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(kind, detail=detail, instance=request.url.path, headers=headers)


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    return _domain_problem(request, exc)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _validation_problem(request, exc)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _http_problem(request, exc)


def install(app: FastAPI) -> None:
    _document_problems(app)
    for exc_type in DOMAIN_PROBLEMS:
        app.add_exception_handler(exc_type, _domain_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _domain_handler)


def _doc(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


PROBLEM_DOCS: dict[int, dict[str, Any]] = {
    400: _doc("Malformed request"),
    401: _doc("Missing or unknown API key"),
    403: _doc("The key lacks the scope"),
    404: _doc("Not found (or another workspace's)"),
    409: _doc("Conflicts with the current state"),
    413: _doc("Body too large"),
    422: _doc("Validation failed"),
    503: _doc("A backing service is unavailable; nothing changed"),
    429: {
        **_doc("Send limit reached; retry after the given seconds"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    },
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given problem statuses (401/422 are always possible)."""
    return {code: PROBLEM_DOCS[code] for code in sorted({400, 401, 413, 422, *codes})}


def _document_problems(app: FastAPI) -> None:
    """FastAPI documents a response `model` as application/json; ours are application/problem+json."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
