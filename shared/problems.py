"""RFC 9457 problem details for every HTTP app (the tenant API and ingest): the one way errors become responses.

Each app keeps its own domain errors and its own `ProblemMap` (domain error class -> `ProblemType`, looked up
along the MRO, plus an optional hook for extra headers and extension members); `install(app, problems)` routes
domain errors, validation errors, routing errors (404/405) and bugs through it, so every 4xx/5xx leaves as
`application/problem+json` with `type` = `/problems/<slug>`, `title`, `status`, `detail` and `instance`.

An exception's `detail` attribute is taken as safe to show (the apps' domain errors set it). Without one, a 4xx
shows `str(exc)`; a 5xx of a mapped type (a backing service is down) shows a generic sentence and
`Retry-After: 5`, since `str()` of a foreign error may name hosts; anything unmapped is a 500 without details,
logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.observability import logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members: `errors`, `retry_after`, and per-app ones)."""

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
    # Shown when the exception carries no safe detail of its own; for a 5xx, instead of "nothing changed".
    detail: str | None = None


VALIDATION = ProblemType(422, "validation-failed", "Request validation failed")
MALFORMED_BODY = ProblemType(400, "malformed-body", "Malformed request body")
INTERNAL = ProblemType(500, "internal", "Internal server error")


@dataclass(frozen=True)
class Extras:
    """What an app adds to one error's problem: response headers and extension members."""

    headers: dict[str, str] = field(default_factory=dict)
    members: dict[str, Any] = field(default_factory=dict)


def no_extras(_: Exception) -> Extras:
    return Extras()


@dataclass(frozen=True)
class ProblemMap:
    """One app's map from its domain errors (and the foreign ones it expects) to problem types."""

    domain: Mapping[type[Exception], ProblemType]
    extras: Callable[[Exception], Extras] = no_extras

    def problem_for(self, exc: Exception) -> ProblemType:
        for klass in type(exc).__mro__:
            if klass in self.domain:
                return self.domain[klass]
        return INTERNAL

    def response_for(self, exc: Exception, path: str) -> JSONResponse:
        """The response for any exception (domain, foreign domain, or a bug: 500 without details)."""
        kind = self.problem_for(exc)
        extras = self.extras(exc)
        headers = dict(extras.headers)
        public: str | None = getattr(exc, "detail", None)
        detail: str | None
        if kind is INTERNAL:
            logger.exception("unhandled error", path=path)
            detail = None
        elif kind.status >= 500:
            logger.warning("backing service unavailable", path=path, error=f"{type(exc).__name__}: {exc}")
            headers.setdefault("Retry-After", str(UNAVAILABLE_RETRY_AFTER_SECONDS))
            detail = public or kind.detail or f"{kind.title.lower()}; nothing changed, try again"
        else:
            detail = public or kind.detail or str(exc)
        return problem_response(kind, detail=detail, instance=path, headers=headers or None, **extras.members)


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


def validation_response(exc: RequestValidationError, path: str) -> JSONResponse:
    """Schema errors name every field (`errors: [{field, message}]`); a body that is not JSON is a 400."""
    details = exc.errors()
    if any(e.get("type") == "json_invalid" for e in details):
        return problem_response(MALFORMED_BODY, detail="the body is not valid JSON", instance=path)
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in details
    ]
    return problem_response(VALIDATION, detail="the request does not match the schema", instance=path, errors=fields)


def http_response(exc: StarletteHTTPException, path: str) -> JSONResponse:
    """Routing and framework errors (404 unknown route, 405, ...) as problems named after their status."""
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    kind = ProblemType(exc.status_code, title.lower().replace(" ", "-"), title)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(kind, detail=detail, instance=path, headers=headers)


def install(app: FastAPI, problems: ProblemMap) -> None:
    """Route every error of `app` through `problems`, and document problem responses as problem+json."""

    async def domain_handler(request: Request, exc: Exception) -> JSONResponse:
        return problems.response_for(exc, request.url.path)

    async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc, request.url.path)

    async def http_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return http_response(exc, request.url.path)

    _document_problems(app)
    for exc_type in problems.domain:
        app.add_exception_handler(exc_type, domain_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(Exception, domain_handler)


def problem_doc(description: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI `responses` entry for a problem (e.g. `headers=...` as extra)."""
    return {"model": Problem, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}, **extra}


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
