"""EventBridge rules from `shared.topology.SCHEDULES`: cleanup every 15 minutes, retry scheduler every minute."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from shared import topology


class Schedules(Construct):
    def __init__(self, scope: Construct, id: str, *, functions: Mapping[str, lambda_.IFunction]) -> None:
        super().__init__(scope, id)
        self.rules: dict[str, events.Rule] = {}
        for schedule in topology.SCHEDULES:
            rule_id = "".join(part.capitalize() for part in schedule.function.split("_"))
            self.rules[schedule.function] = events.Rule(
                self,
                rule_id,
                description=f"{schedule.name}: {schedule.expression}",
                schedule=events.Schedule.expression(schedule.expression),
                targets=[
                    targets.LambdaFunction(
                        functions[schedule.function],
                        # A missed tick is made up by the next one: do not pile up retries.
                        retry_attempts=0,
                        max_event_age=Duration.minutes(max(schedule.rate_minutes, 1)),
                    )
                ],
            )
