"""The ingest HTTP app: `POST /v1/events`. Runs under uvicorn locally and in Lambda through Mangum."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from functions.ingest import problems
from functions.ingest.errors import PayloadTooLarge
from functions.ingest.logic import ingest_batch
from shared.producer import IngestResponse, Outcome
from shared.redis_client import get_redis
from shared.runtime import tune_gc_for_serving
from shared.settings import get_settings


def source_ip(request: Request) -> str | None:
    """The caller's address as API Gateway saw it, or the socket peer locally; never a client header."""
    aws_event = request.scope.get("aws.event")
    if isinstance(aws_event, dict):
        return aws_event.get("requestContext", {}).get("http", {}).get("sourceIp")
    return request.client.host if request.client else None


async def read_body_within_limit(request: Request) -> bytes:
    limit = get_settings().max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
    return body


def create_app() -> FastAPI:
    app = FastAPI(title="wa-gateway ingest", version="1", docs_url=None, redoc_url=None)
    problems.install(app)

    @app.post("/v1/events", status_code=202, response_model=IngestResponse)
    async def post_events(request: Request, response: Response) -> IngestResponse:
        body = await read_body_within_limit(request)
        result = await ingest_batch(get_redis(), body=body, headers=request.headers, source_ip=source_ip(request))
        waits = [r.retry_after for r in result.results if r.outcome is Outcome.THROTTLED and r.retry_after]
        if waits:
            response.headers["Retry-After"] = str(max(waits))
        return result

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app()
tune_gc_for_serving()
