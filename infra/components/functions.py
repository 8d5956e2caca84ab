"""The five Lambdas: Python 3.11 on arm64 in the VPC, one shared dependencies layer (Powertools included),
least-privilege grants, reserved concurrency where configured (it caps the Redis connections a function opens)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import bundling
from infra.components.common import log_retention, metrics_namespace
from infra.components.queues import Queues
from infra.components.redis import Redis
from infra.components.secrets import AppSecrets
from infra.config import FunctionConfig, FunctionsConfig
from shared import topology

FUNCTION_NAMES = ("api", "ingest", "deliver", "retry_scheduler", "cleanup")
DEFAULT_TIMEOUT_SECONDS = 30


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: FunctionsConfig,
        env_name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        redis: Redis,
        queues: Queues,
        secrets: AppSecrets,
        auth_bucket: s3.IBucket,
        install_dependencies: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="wa-gateway Lambdas", allow_all_outbound=True
        )
        redis.allow_from(self.security_group, "Lambdas to Redis")

        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=bundling.dependencies_code(install=install_dependencies),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="wa-gateway runtime dependencies (pyproject.toml), Powertools included",
        )

        # Every function gets every secret *name*: settings refuse to start outside dev without them. Only the
        # functions granted below can read the values.
        self.environment = {
            "WAGW_ENV": env_name,
            "WAGW_AWS_REGION": Stack.of(self).region,
            "WAGW_REDIS_URL": redis.url,
            "WAGW_REDIS_AUTH_SECRET_NAME": redis.auth_secret.secret_arn,
            "WAGW_DELIVERIES_QUEUE_URL": queues.deliveries.queue_url,
            "WAGW_DELIVERIES_QUEUE_NAME": queues.deliveries.queue_name,
            "WAGW_DELIVERIES_DLQ_URL": queues.dlq.queue_url,
            "WAGW_DELIVERIES_DLQ_NAME": queues.dlq.queue_name,
            "WAGW_AUTH_BUCKET": auth_bucket.bucket_name,
            "WAGW_PRODUCER_KEYS_SECRET_NAME": secrets.producer_keys.secret_arn,
            "WAGW_ADMIN_API_KEY_SECRET_NAME": secrets.admin_api_key.secret_arn,
            "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace(env_name),
        }

        def make(name: str, fn_config: FunctionConfig, timeout: int) -> lambda_.Function:
            log_group = logs.LogGroup(
                self,
                f"{_pascal(name)}Logs",
                retention=log_retention(config.log_retention_days),
                removal_policy=removal_policy,
            )
            function = lambda_.Function(
                self,
                _pascal(name),
                description=f"wa-gateway {name}",
                runtime=lambda_.Runtime.PYTHON_3_11,
                architecture=lambda_.Architecture.ARM_64,
                handler=f"functions.{name}.handler.handler",
                code=bundling.function_code(name),
                layers=[self.dependencies],
                memory_size=fn_config.memory_mb,
                timeout=Duration.seconds(timeout),
                reserved_concurrent_executions=fn_config.reserved_concurrency,
                vpc=vpc,
                vpc_subnets=subnets,
                security_groups=[self.security_group],
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                environment={**self.environment, "POWERTOOLS_SERVICE_NAME": f"wagw-{name.replace('_', '-')}"},
            )
            redis.auth_secret.grant_read(function)
            return function

        def timeout_of(fn_config: FunctionConfig) -> int:
            return fn_config.timeout_seconds or DEFAULT_TIMEOUT_SECONDS

        self.api = make("api", config.api, timeout_of(config.api))
        self.ingest = make("ingest", config.ingest, timeout_of(config.ingest))
        self.deliver = make("deliver", config.deliver, topology.DELIVER_FUNCTION_TIMEOUT_SECONDS)
        self.retry_scheduler = make("retry_scheduler", config.retry_scheduler, timeout_of(config.retry_scheduler))
        self.cleanup = make("cleanup", config.cleanup, timeout_of(config.cleanup))
        self.by_name: dict[str, lambda_.Function] = {
            "api": self.api,
            "ingest": self.ingest,
            "deliver": self.deliver,
            "retry_scheduler": self.retry_scheduler,
            "cleanup": self.cleanup,
        }

        # api: admin key, re-queueing deliveries (test events, manual resend).
        secrets.admin_api_key.grant_read(self.api)
        queues.deliveries.grant_send_messages(self.api)
        # ingest: verifies producer signatures, enqueues deliveries.
        secrets.producer_keys.grant_read(self.ingest)
        queues.deliveries.grant_send_messages(self.ingest)
        # deliver: consumes deliveries, re-enqueues delayed retries, dead-letters exhausted ones.
        queues.deliveries.grant_send_messages(self.deliver)
        queues.dlq.grant_send_messages(self.deliver)
        self.deliver.add_event_source(
            sources.SqsEventSource(
                queues.deliveries,
                batch_size=topology.DELIVER_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=config.deliver_max_concurrency,
            )
        )
        # retry_scheduler: moves due retries (longer than SQS's 15-minute delay) back onto the queue.
        queues.deliveries.grant_send_messages(self.retry_scheduler)
        # cleanup: prunes auth archives of deleted sessions.
        auth_bucket.grant_read(self.cleanup)
        auth_bucket.grant_delete(self.cleanup)
        self._producer_keys = secrets.producer_keys

    def post_events_to(self, ingest_url: str) -> None:
        """Cleanup posts the session.status events of its changes to ingest like any producer: it signs with
        the producer key and reaches the API's public URL through the NAT. The URL exists only once the API
        does, and the API is built from these functions, hence a separate step."""
        self.cleanup.add_environment("WAGW_INGEST_URL", ingest_url)
        self._producer_keys.grant_read(self.cleanup)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
