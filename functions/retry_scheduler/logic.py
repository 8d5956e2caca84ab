"""Move due long-delay retries from the Redis schedule back onto the deliveries queue.

Claim (Lua: due set -> in-flight set with a lease deadline), send, then acknowledge. A scheduler that dies
after claiming leaves its entries in flight; when their lease lapses the next run claims them again, so
nothing is lost. The claim is atomic, so two schedulers running at once never take the same entry; the
lease (`retry_claim_lease_seconds`) is longer than the function's timeout, so a claim only lapses once its
holder is certainly gone.
"""

from __future__ import annotations

import asyncio
import time

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel
from redis.asyncio import Redis

from shared import aws
from shared.delivery import store
from shared.delivery.queue import EnqueueError, send_batch
from shared.observability import logger, metrics
from shared.settings import get_settings


class MoveResult(BaseModel):
    sent: int = 0
    missing: int = 0  # claimed ids whose payload had gone: acknowledged, nothing to send
    failed: int = 0  # SQS refused: left in flight, due again when the lease lapses
    batches: int = 0


async def move_due(redis: Redis, deadline: float | None = None, at_ms: int | None = None) -> MoveResult:
    """Claim, send and acknowledge batches until nothing is due or `deadline` (time.monotonic) is near."""
    limit = get_settings().retry_scheduler_batch
    queue_url = await asyncio.to_thread(aws.deliveries_queue_url)
    result = MoveResult()
    while deadline is None or time.monotonic() < deadline:
        claim = await store.claim_due(redis, limit, at_ms=at_ms)
        if not claim.messages and not claim.missing:
            break
        result.batches += 1
        failed: set[str] = set()
        try:
            await asyncio.to_thread(send_batch, queue_url, claim.messages)
        except EnqueueError as exc:
            failed = set(exc.failed_ids)
            logger.warning("retries not enqueued; they will be claimed again", extra={"count": len(failed)})
        sent = [m.delivery_id for m in claim.messages if m.delivery_id not in failed]
        await store.ack_claimed(redis, claim.lease_until_ms, sent + claim.missing)
        result.sent += len(sent)
        result.missing += len(claim.missing)
        result.failed += len(failed)
        if failed or len(claim.messages) + len(claim.missing) < limit:
            break
    metrics.add_metric(name="RetriesReleased", unit=MetricUnit.Count, value=result.sent)
    return result
