"""Lambda entry point for cleanup: an EventBridge scheduled event in, the run's result (a dict) out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from functions.cleanup.logic import RunOptions, run_cleanup
from functions.cleanup.models import CleanupResult
from shared.observability import logger, metrics, tracer
from shared.redis_client import close_redis, get_redis
from shared.settings import get_settings

# Stop starting new pages this long before Lambda's own timeout (at most a quarter of the time left), to
# finish the page, post the events and release the lock.
SAFETY_MARGIN_SECONDS = 20.0


def metric_name(rule: str) -> str:
    """`qr_timed_out` -> `CleanupQrTimedOut`."""
    return "Cleanup" + "".join(part.title() for part in rule.split("_"))


async def _run(options: RunOptions) -> CleanupResult:
    try:
        return await run_cleanup(get_redis(), get_settings(), options)
    finally:
        await close_redis()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    scheduled = parse(event=event, model=EventBridgeModel)
    dry_run = bool(scheduled.detail.get("dry_run", False)) if isinstance(scheduled.detail, dict) else False
    remaining_ms = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
    deadline = None
    if remaining_ms:
        remaining = remaining_ms / 1000
        deadline = time.monotonic() + remaining - min(SAFETY_MARGIN_SECONDS, remaining / 4)
    result = asyncio.run(_run(RunOptions(dry_run=dry_run, deadline=deadline)))
    if not result.dry_run:
        metrics.add_metric(name="CleanupSkipped", unit=MetricUnit.Count, value=int(result.skipped))
        metrics.add_metric(name="CleanupSessionsScanned", unit=MetricUnit.Count, value=result.scanned)
        metrics.add_metric(name="CleanupEventsEmitted", unit=MetricUnit.Count, value=result.events_emitted)
        metrics.add_metric(name="CleanupEventsPending", unit=MetricUnit.Count, value=result.events_pending)
        metrics.add_metric(name="CleanupErrors", unit=MetricUnit.Count, value=result.errors)
        for rule, count in result.counts.items():
            metrics.add_metric(name=metric_name(rule), unit=MetricUnit.Count, value=count)
    return result.model_dump(mode="json")
