"""Alarms to an SNS topic, and one CloudWatch dashboard."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.components.api import Api
from infra.components.functions import Functions
from infra.components.queues import Queues
from infra.components.redis import Redis
from infra.components.workers import Workers
from infra.config import AlarmsConfig


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: AlarmsConfig,
        env_name: str,
        queues: Queues,
        functions: Functions,
        api: Api,
        workers: Workers,
        redis: Redis,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        # CloudWatch can publish to an encrypted topic only with a customer managed key that lets it.
        key = kms.Key(
            self,
            "AlarmsKey",
            description="wa-gateway alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(self, "Alarms", display_name=f"wa-gateway {env_name} alarms", master_key=key)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowPublishThroughSSLOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        if config.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.email))
        action = actions.SnsAction(self.topic)

        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(
            name: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            *,
            periods: int = 1,
        ) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                alarm_description=f"wa-gateway {env_name}: {description}",
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms[name] = created

        five_minutes = Duration.minutes(5)
        alarm(
            "DlqHasMessages",
            queues.dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=Duration.minutes(1)),
            1,
            "the deliveries DLQ has messages (redrive them, see docs/deploy.md)",
        )
        alarm(
            "DeliverErrors",
            functions.deliver.metric_errors(statistic="Sum", period=five_minutes),
            config.deliver_errors_per_5_minutes,
            "the deliver function fails",
        )
        ingest_5xx = api.ingest_rate_percent(api.ingest_5xx, "s5xx", "ingest 5xx %")
        alarm(
            "Ingest5xxRate",
            ingest_5xx,
            config.ingest_5xx_percent,
            f"more than {config.ingest_5xx_percent}% of ingest requests answered 5xx",
            periods=3,
        )
        ingest_429 = api.ingest_rate_percent(api.ingest_429, "s429", "ingest 429 %")
        alarm(
            "Ingest429Rate",
            ingest_429,
            config.ingest_429_percent,
            f"more than {config.ingest_429_percent}% of ingest requests throttled (429)",
            periods=3,
        )
        running = workers.container_insights_metric("RunningTaskCount")
        desired = workers.container_insights_metric("DesiredTaskCount")
        missing_workers = cloudwatch.MathExpression(
            expression="desired - running",
            using_metrics={"desired": desired, "running": running},
            label="workers missing",
            period=Duration.minutes(1),
        )
        alarm("WorkersBelowDesired", missing_workers, 1, "fewer session workers running than desired", periods=5)
        redis_cpu = redis.max_over_nodes("EngineCPUUtilization", "cpu", "Redis engine CPU % (max over nodes)")
        alarm("RedisCpu", redis_cpu, config.redis_cpu_percent, "Redis engine CPU high", periods=3)
        redis_memory = redis.max_over_nodes("DatabaseMemoryUsagePercentage", "mem", "Redis memory % (max over nodes)")
        alarm(
            "RedisMemory",
            redis_memory,
            config.redis_memory_percent,
            f"Redis memory above {config.redis_memory_percent:g}% of maxmemory (at 100% it refuses writes: noeviction)",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest requests",
                left=[api.ingest_requests, api.ingest_5xx, api.ingest_429],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Ingest 5xx / 429 %", left=[ingest_5xx, ingest_429], width=8),
            cloudwatch.GraphWidget(
                title="Deliveries queue",
                left=[
                    queues.deliveries.metric_approximate_number_of_messages_visible(),
                    queues.dlq.metric_approximate_number_of_messages_visible(),
                ],
                right=[queues.deliveries.metric_approximate_age_of_oldest_message()],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations",
                left=[fn.metric_invocations(label=name) for name, fn in functions.by_name.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[fn.metric_errors(label=name) for name, fn in functions.by_name.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Duration p99",
                left=[fn.metric_duration(label=name, statistic="p99") for name, fn in functions.by_name.items()],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Session workers", left=[running, desired], width=8),
            cloudwatch.GraphWidget(title="Sessions per task", left=[workers.sessions_per_task], width=8),
            cloudwatch.GraphWidget(title="Redis CPU / memory %", left=[redis_cpu, redis_memory], width=8),
        )
