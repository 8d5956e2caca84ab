"""Fan-out: one deliveries-queue message per (accepted event, subscribed endpoint of its workspace)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from shared import aws
from shared.delivery.queue import DeliveryMessage, EnqueueError, delivery_id_for, send_batch
from shared.events import Event, event_to_dict
from shared.store.endpoints import endpoints_by_workspace

SQS_BATCH = 10


async def deliveries_for(redis: Redis, events: Sequence[Event]) -> list[DeliveryMessage]:
    endpoints = await endpoints_by_workspace(redis, {e.workspace_id for e in events})
    return [
        DeliveryMessage(
            delivery_id=delivery_id_for(event.id, endpoint.id),
            workspace_id=event.workspace_id,
            endpoint_id=endpoint.id,
            event=event_to_dict(event),
        )
        for event in events
        for endpoint in endpoints[event.workspace_id]
        if endpoint.wants(event.type)
    ]


async def enqueue(deliveries: Sequence[DeliveryMessage]) -> set[str]:
    """Send every delivery (SQS batches in parallel threads); return the event ids not fully enqueued."""
    if not deliveries:
        return set()
    queue_url = await asyncio.to_thread(aws.deliveries_queue_url)
    chunks = [deliveries[i : i + SQS_BATCH] for i in range(0, len(deliveries), SQS_BATCH)]
    outcomes = await asyncio.gather(
        *(asyncio.to_thread(send_batch, queue_url, chunk) for chunk in chunks), return_exceptions=True
    )
    failed_events: set[str] = set()
    for chunk, outcome in zip(chunks, outcomes, strict=True):
        if isinstance(outcome, EnqueueError):
            failed = set(outcome.failed_ids)
            failed_events.update(d.event_id for d in chunk if d.delivery_id in failed)
        elif isinstance(outcome, BaseException):
            failed_events.update(d.event_id for d in chunk)
    return failed_events
