"""Lambda entry point for ingest: API Gateway HTTP API (v2) events through Mangum."""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from functions.ingest.app import app
from shared.observability import logger, metrics, tracer

_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
