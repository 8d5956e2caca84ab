"""EventBridge schedules, locally: the same rules the CDK app creates, fired by LocalStack's EventBridge
into an SQS queue per rule, from which the scheduled handler is invoked with the event EventBridge sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from shared import aws, topology
from shared.observability import logger
from wagw_local.lambda_runtime import LocalLambda


@dataclass(frozen=True)
class LocalSchedule:
    schedule: topology.Schedule
    queue_url: str


def create_schedules(schedules: tuple[topology.Schedule, ...] = topology.SCHEDULES) -> list[LocalSchedule]:
    """Create (idempotently) each rule with a queue as its target; return where the events will land."""
    events = aws.client("events")
    created = []
    for schedule in schedules:
        queue_url = aws.sqs().create_queue(QueueName=f"{schedule.name}-events")["QueueUrl"]
        queue_arn = aws.queue_arn(queue_url)
        events.put_rule(Name=schedule.name, ScheduleExpression=schedule.expression, State="ENABLED")
        events.put_targets(Rule=schedule.name, Targets=[{"Id": "local-runner", "Arn": queue_arn}])
        created.append(LocalSchedule(schedule, queue_url))
    return created


def run_schedule(local: LocalSchedule, function: LocalLambda, stop: threading.Event) -> None:
    """Invoke `function` with every event the rule fires, until `stop` is set (run it on a thread)."""
    while not stop.is_set():
        received = aws.sqs().receive_message(QueueUrl=local.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        for message in received.get("Messages", []):
            event = json.loads(message["Body"])
            try:
                result = function.invoke_sync(event)
                logger.info("scheduled run", extra={"rule": local.schedule.name, "result": result})
            except Exception:
                logger.exception("scheduled run failed", extra={"rule": local.schedule.name})
            aws.sqs().delete_message(QueueUrl=local.queue_url, ReceiptHandle=message["ReceiptHandle"])
