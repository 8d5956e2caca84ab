"""EventBridge rules from `shared.topology.SCHEDULES`: cleanup every 15 minutes, retry scheduler every minute.

A tick is worth nothing once the next one is due, so neither EventBridge nor Lambda retries one: the rule's target
has no retries, and each scheduled function's asynchronous invoke configuration overrides Lambda's own defaults (2
retries, events kept 6 hours) with no retries and a one-minute maximum age. With reserved concurrency 1 a throttled
tick would otherwise be retried for hours and pile up behind the next ones. A tick that fails or expires lands on
the `ScheduleFailures` queue (alarmed on in observability.py), so it is seen rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared import topology

# Lambda's smallest maximum event age; a tick older than that is superseded by the next one anyway.
TICK_MAX_AGE = Duration.seconds(60)
FAILURES_RETENTION = Duration.days(14)


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.failures = sqs.Queue(
            self,
            "Failures",
            retention_period=FAILURES_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        self.rules: dict[str, events.Rule] = {}
        for schedule in topology.SCHEDULES:
            function = functions[schedule.function]
            function.configure_async_invoke(
                retry_attempts=0,
                max_event_age=TICK_MAX_AGE,
                on_failure=destinations.SqsDestination(self.failures),
            )
            rule_id = "".join(part.capitalize() for part in schedule.function.split("_"))
            self.rules[schedule.function] = events.Rule(
                self,
                rule_id,
                description=f"{schedule.name}: {schedule.expression}",
                schedule=events.Schedule.expression(schedule.expression),
                targets=[
                    targets.LambdaFunction(
                        function,
                        # A missed tick is made up by the next one: do not pile up retries.
                        retry_attempts=0,
                        max_event_age=Duration.minutes(max(schedule.rate_minutes, 1)),
                    )
                ],
            )
