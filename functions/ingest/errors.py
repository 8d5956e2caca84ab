"""Ingest's domain errors, and the one place they become HTTP answers (RFC 9457 problem+json)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class IngestError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthenticated(IngestError):
    status = 401
    title = "Signature not accepted"


class PayloadTooLarge(IngestError):
    status = 413
    title = "Payload too large"


class InvalidBatch(IngestError):
    status = 422
    title = "Invalid event batch"


class UnknownTenant(IngestError):
    status = 422
    title = "Unknown workspace or session"


class QueueUnavailable(IngestError):
    status = 503
    title = "Deliveries queue unavailable"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IngestError)
    async def _domain(_: Request, exc: IngestError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "Invalid request", str(exc.errors()[:3]))
