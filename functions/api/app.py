"""The FastAPI application: `create_app()` builds it, `app` is the instance uvicorn and Mangum serve.

Local: `.venv/bin/uvicorn functions.api.app:app --port 8080` (Redis from WAGW_REDIS_URL); the console
is at /console, the OpenAPI document at /openapi.json and its UI at /docs.
"""

from __future__ import annotations

from fastapi import FastAPI

from functions.api import problems
from functions.api.middleware import BodyLimitMiddleware
from functions.api.routers import (
    actions,
    admin,
    console,
    deliveries,
    endpoints,
    health,
    media,
    messages,
    sessions,
    workspace,
)
from functions.api.routers.reads import router as reads_router
from functions.api.webhooks_doc import add_webhooks
from shared.runtime import tune_gc_for_serving
from shared.settings import get_settings

DESCRIPTION = """The wa-gateway tenant API: WhatsApp sessions, messages, webhook endpoints and deliveries.

Authenticate with a workspace API key: `Authorization: Bearer wagw_sk_...`. Keys have scopes: `read`,
`send`, `manage`. Errors are `application/problem+json` (RFC 9457). Ids of another workspace answer 404.
"""


def create_app() -> FastAPI:
    app = FastAPI(
        title="wa-gateway",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # Tracing and metrics go through Powertools (X-Ray, EMF); FastAPI's own OpenTelemetry hooks would
        # only look for a provider that is never configured, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    # Matched in order: the hot send route first.
    for router in (
        messages.router,
        actions.router,
        media.router,
        workspace.router,
        sessions.router,
        reads_router,
        endpoints.router,
        deliveries.router,
        admin.router,
    ):
        app.include_router(router)
    app.include_router(console.router)
    app.include_router(health.router)
    app.add_middleware(BodyLimitMiddleware, limit=get_settings().api_max_body_bytes)
    add_webhooks(app)
    return app


app = create_app()
tune_gc_for_serving()
