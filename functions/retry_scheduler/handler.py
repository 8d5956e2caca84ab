"""Lambda entry point for the retry scheduler: an EventBridge scheduled event (rate 1 minute) in."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from functions.retry_scheduler import logic
from shared.observability import logger, metrics, tracer
from shared.redis_client import close_redis, get_redis

SAFETY_MS = 5000  # stop claiming this long before the function would time out


async def _run(deadline: float) -> logic.MoveResult:
    try:
        return await logic.move_due(get_redis(), deadline=deadline)
    finally:
        await close_redis()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    scheduled = EventBridgeEvent(event)
    logger.debug("scheduled run", extra={"time": scheduled.time, "rule": scheduled.resources})
    remaining_ms = context.get_remaining_time_in_millis() if context else 60_000
    deadline = time.monotonic() + max(1000, remaining_ms - SAFETY_MS) / 1000
    result = asyncio.run(_run(deadline))
    logger.info("due retries moved", extra=result.model_dump())
    return result.model_dump()
