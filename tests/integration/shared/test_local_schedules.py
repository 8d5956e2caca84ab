"""The local EventBridge schedules: the rules the CDK app creates, created in LocalStack, really fire, and the
scheduled handler they invoke does its work (the retry scheduler moves due deliveries back onto the queue).

LocalStack fires a `rate(1 minute)` rule about a minute after it is created, so this test waits that long.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from functions.retry_scheduler import handler as scheduler_handler
from shared import aws, topology
from shared.delivery import store
from shared.store.records import EndpointRecord
from tests.integration.deliver.conftest import make_message
from wagw_local.lambda_runtime import LocalLambda
from wagw_local.schedules import LocalSchedule, create_schedules, run_schedule

FIRE_WAIT_SECONDS = 150  # LocalStack: ~60 s to the first fire of a 1-minute rule, more on a loaded machine
_ENDPOINT = EndpointRecord(id="ep_rule", workspace_id="ws_1", url="http://127.0.0.1:9/", secrets=[])


@pytest.fixture
def local_schedules(queues: Any) -> Iterator[list[LocalSchedule]]:
    created = create_schedules()
    try:
        yield created
    finally:
        events = aws.client("events")
        for local in created:
            events.remove_targets(Rule=local.schedule.name, Ids=["local-runner"])
            events.delete_rule(Name=local.schedule.name)
            aws.sqs().delete_queue(QueueUrl=local.queue_url)


def _queued_delivery_ids(queue_url: str) -> set[str]:
    response = aws.sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return {json.loads(m["Body"])["delivery_id"] for m in response.get("Messages", [])}


def test_rules_are_the_topology_schedules_each_targeting_its_runner_queue(
    local_schedules: list[LocalSchedule],
) -> None:
    # Given the local schedules created from shared.topology (the source the CDK app reads too)
    events = aws.client("events")
    # When reading the rules back from EventBridge
    rules = {s.name: events.describe_rule(Name=s.name) for s in topology.SCHEDULES}
    # Then each rule has the topology's rate, is enabled, and targets the queue its runner reads
    for local in local_schedules:
        rule = rules[local.schedule.name]
        assert rule["ScheduleExpression"] == local.schedule.expression
        assert rule["State"] == "ENABLED"
        (target,) = events.list_targets_by_rule(Rule=local.schedule.name)["Targets"]
        assert target["Arn"] == aws.queue_arn(local.queue_url)


async def test_the_retry_scheduler_rule_fires_and_due_retries_go_back_on_the_queue(
    redis: Redis, queues: Any, local_schedules: list[LocalSchedule]
) -> None:
    # Given two deliveries whose retry is already due in the Redis schedule
    due = []
    for index in range(2):
        message = make_message(_ENDPOINT, f"evt_rule{index}")
        await store.schedule_retry(redis, message, store.now_ms() - 1000)
        due.append(message.delivery_id)
    # And the runner that invokes the retry scheduler with whatever its rule fires
    (retry_rule,) = [s for s in local_schedules if s.schedule is topology.RETRY_SCHEDULER_SCHEDULE]
    received_events: list[dict[str, Any]] = []

    def record_and_handle(event: dict[str, Any], context: Any) -> Any:
        received_events.append(event)
        return scheduler_handler.handler(event, context)

    function = LocalLambda("retry_scheduler", record_and_handle)
    stop = threading.Event()
    runner = threading.Thread(target=run_schedule, args=(retry_rule, function, stop), daemon=True)
    runner.start()
    try:
        # When EventBridge fires the rule (nobody invokes the handler but the rule)
        deadline = time.monotonic() + FIRE_WAIT_SECONDS
        while not received_events and time.monotonic() < deadline:
            await asyncio.sleep(1)
        # Then the handler got EventBridge's scheduled event for that rule
        assert received_events, f"the rule did not fire within {FIRE_WAIT_SECONDS} s"
        event = received_events[0]
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["resources"][0].endswith(f"rule/{topology.RETRY_SCHEDULER_SCHEDULE.name}")
        # And the due retries are back on the deliveries queue, none left in the schedule
        queued: set[str] = set()
        deadline = time.monotonic() + 30
        while not set(due) <= queued and time.monotonic() < deadline:
            queued |= await asyncio.to_thread(_queued_delivery_ids, queues.deliveries_url)
        assert set(due) <= queued
        assert await store.retry_counts(redis) == (0, 0)
    finally:
        stop.set()
        runner.join(timeout=5)
        function.close()
