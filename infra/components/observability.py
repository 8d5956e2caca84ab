"""Alarms to an SNS topic (and to an existing topic when configured), and one CloudWatch dashboard.

Outside dev the app refuses to synthesize without a subscriber (`AlarmsConfig.require_subscriber`).
"""

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
from infra.components.common import metrics_namespace
from infra.components.functions import Functions
from infra.components.queues import Queues
from infra.components.redis import Redis
from infra.components.workers import SERVICE_NAME as WORKERS_SERVICE
from infra.components.workers import Workers
from infra.config import AlarmsConfig

# Ingest counts the session.status events it records with status `failed` (functions/ingest/logic.py).
SESSIONS_FAILED_METRIC = "sessions_failed"
INGEST_SERVICE = "wagw-ingest"
# A worker counts the sessions whose page never got a ready wa-js (session_workers/session.py, _expect_attach).
WA_JS_INCOMPATIBLE_METRIC = "WaJsIncompatible"


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
        topics: list[sns.ITopic] = [self.topic]
        if config.topic_arn:
            topics.append(sns.Topic.from_topic_arn(self, "Subscriber", config.topic_arn))
        notify = [actions.SnsAction(topic) for topic in topics]

        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(
            name: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            *,
            periods: int = 1,
            below: bool = False,
            missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        ) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                alarm_description=f"wa-gateway {env_name}: {description}",
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
                if below
                else cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=missing,
            )
            created.add_alarm_action(*notify)
            created.add_ok_action(*notify)
            self.alarms[name] = created

        five_minutes = Duration.minutes(5)
        alarm(
            "DlqHasMessages",
            queues.dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=Duration.minutes(1)),
            1,
            "the deliveries DLQ has messages (redrive them, see docs/deploy.md)",
        )
        alarm(
            "DeliveriesOldestMessage",
            queues.deliveries.metric_approximate_age_of_oldest_message(statistic="Maximum", period=five_minutes),
            config.deliveries_oldest_age_seconds,
            f"a delivery waited {config.deliveries_oldest_age_seconds} s on the queue (deliver is stuck or slow)",
            periods=2,
        )
        for name, function in functions.by_name.items():
            pascal = "".join(part.capitalize() for part in name.split("_"))
            alarm(
                f"{pascal}Errors",
                function.metric_errors(statistic="Sum", period=five_minutes),
                config.function_errors_per_5_minutes,
                f"the {name} function fails",
            )
            alarm(
                f"{pascal}Throttles",
                function.metric_throttles(statistic="Sum", period=five_minutes),
                config.function_throttles_per_5_minutes,
                f"the {name} function is throttled (reserved or account concurrency exhausted)",
            )
        alarm(
            "RetrySchedulerNotRunning",
            functions.retry_scheduler.metric_invocations(statistic="Sum", period=five_minutes),
            1,
            "the retry scheduler (every minute) has not run for 10 minutes: due retries are not being sent",
            periods=2,
            below=True,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        alarm(
            "SessionsFailed",
            cloudwatch.Metric(
                namespace=metrics_namespace(env_name),
                metric_name=SESSIONS_FAILED_METRIC,
                dimensions_map={"service": INGEST_SERVICE},
                statistic="Sum",
                period=Duration.minutes(15),
            ),
            config.sessions_failed_per_15_minutes,
            f"{config.sessions_failed_per_15_minutes} or more sessions went to `failed` within 15 minutes",
        )
        alarm(
            "WaJsIncompatible",
            cloudwatch.Metric(
                namespace=metrics_namespace(env_name),
                metric_name=WA_JS_INCOMPATIBLE_METRIC,
                dimensions_map={"service": WORKERS_SERVICE},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            1,
            "a session failed with wa_js_incompatible: WhatsApp Web changed and wa-js cannot hook it; update wa-js "
            "(docs/session-workers.md, Updating wa-js)",
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
        alarm(
            "WorkersBelowMinimum",
            running,
            workers.min_count,
            f"fewer than {workers.min_count} session workers (the autoscaling minimum) running",
            periods=5,
            below=True,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
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
