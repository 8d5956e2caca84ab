"""Lambda entry point for deliver: SQS batches with partial batch failures (Powertools batch processing).

Records of a batch are delivered concurrently (AsyncBatchProcessor), so one slow tenant costs the batch one
timeout, not one per record. A record that raises (bad body, SQS or Redis down) is reported in
`batchItemFailures` and comes back after the visibility timeout; SQS's maxReceiveCount sends it to the DLQ.
When Redis does not answer, a copy goes back on the queue for shortly instead (logic.requeue_after_outage).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from redis.exceptions import RedisError

from functions.deliver import logic
from shared.observability import logger, metrics, tracer


async def record_handler(record: SQSRecord) -> str:
    message = logic.parse_message(record.body)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        outcome = await logic.deliver(message, receive_count=receive_count)
    except RedisError as exc:
        outcome = await logic.requeue_after_outage(message, exc)
    return outcome.value


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = AsyncBatchProcessor(event_type=EventType.SQS)  # per call: it holds this batch's results
    return dict(
        async_process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
