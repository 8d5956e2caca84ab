"""Session workers: an ECS cluster and a Fargate service built from `session_workers/Dockerfile`.

Contract with the worker (see docs/deploy.md):
- command `python -m session_workers`; liveness at `GET http://127.0.0.1:8090/healthz` (2xx while the process
  and its browser answer; never fails on Redis, so a slow Redis failover does not get every task replaced);
- on SIGTERM it hands its sessions over within the stop timeout (120 s, Fargate's maximum);
- it holds at most `WAGW_WORKER_CAPACITY` sessions (`sessions_per_task` in cdk.json);
- it publishes `ActiveSessions` (sessions it holds now) about once a minute as a Powertools/EMF metric in the
  environment's namespace with ONLY the dimension `service=wagw-session-workers` (no per-worker dimension, or
  the series cannot be averaged); autoscaling tracks its average over tasks against
  `sessions_per_task * target_utilization_percent / 100`;
- `WAGW_PRODUCER_KEYS` is injected from Secrets Manager (JSON object of key name to secret), the Redis AUTH token
  is read at run time from the secret named by `WAGW_REDIS_AUTH_SECRET_NAME`.
"""

from __future__ import annotations

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import bundling
from infra.components.common import log_retention
from infra.components.redis import Redis
from infra.components.secrets import AppSecrets
from infra.config import WorkersConfig

DOCKERFILE = "session_workers/Dockerfile"
HEALTH_PORT = 8090
SERVICE_NAME = "wagw-session-workers"
SESSIONS_METRIC = "ActiveSessions"

# The build context is the repository root; the Dockerfile copies package*.json (npm ci of wa-js in a build stage),
# pyproject.toml, shared/ and session_workers/. Keep out everything else, above all what would make the asset hash
# slow (virtualenvs, node_modules, caches).
BUILD_CONTEXT_EXCLUDES = [
    ".git",
    ".venv",
    ".tools",
    "cdk.out",
    "node_modules",
    "**/__pycache__",
    "**/*.pyc",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".ci",
    ".run",
    "bench",
    "docs",
    "functions",
    "infra",
    "tests",
    "wagw_local",
]

HEALTH_COMMAND = (
    "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:"
    + str(HEALTH_PORT)
    + "/healthz', timeout=3)\" || exit 1"
)


class Workers(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: WorkersConfig,
        env_name: str,
        metrics_namespace: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        redis: Redis,
        secrets: AppSecrets,
        auth_bucket: s3.IBucket,
        ingest_url: str,
        region: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.min_count = config.min_count
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=config.cpu,
            memory_limit_mib=config.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(config.log_retention_days), removal_policy=removal_policy
        )
        self.image = ecs.ContainerImage.from_asset(
            str(bundling.REPO_ROOT),
            file=DOCKERFILE,
            exclude=BUILD_CONTEXT_EXCLUDES,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.container = self.task_definition.add_container(
            "Worker",
            image=self.image,
            command=["python", "-m", "session_workers"],
            port_mappings=[ecs.PortMapping(container_port=HEALTH_PORT, name="health")],
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", HEALTH_COMMAND],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(60),
            ),
            stop_timeout=Duration.seconds(config.stop_timeout_seconds),
            logging=ecs.LogDriver.aws_logs(stream_prefix="worker", log_group=log_group),
            environment={
                "WAGW_ENV": env_name,
                "WAGW_AWS_REGION": region,
                "WAGW_REDIS_URL": redis.url,
                "WAGW_REDIS_AUTH_SECRET_NAME": redis.auth_secret.secret_arn,
                "WAGW_AUTH_BUCKET": auth_bucket.bucket_name,
                "WAGW_INGEST_URL": ingest_url,
                "WAGW_ADMIN_API_KEY_SECRET_NAME": secrets.admin_api_key.secret_arn,
                "WAGW_WORKER_CAPACITY": str(config.sessions_per_task),
                "WAGW_HEALTH_PORT": str(HEALTH_PORT),
                # The worker's own handover deadline, inside ECS's stop timeout (SIGTERM .. SIGKILL).
                "WAGW_STOP_TIMEOUT_SECONDS": str(max(config.stop_timeout_seconds - 10, 5)),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            },
            secrets={"WAGW_PRODUCER_KEYS": ecs.Secret.from_secrets_manager(secrets.producer_keys)},
        )
        auth_bucket.grant_read_write(self.task_definition.task_role)
        redis.auth_secret.grant_read(self.task_definition.task_role)

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="wa-gateway session workers", allow_all_outbound=True
        )
        redis.allow_from(self.security_group, "Session workers to Redis")

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            # No desired_count (see WorkersConfig): ECS starts one task on create and registering the scalable
            # target below raises it to min_count; later deploys leave the running count alone.
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )

        self.sessions_per_task = cloudwatch.Metric(
            namespace=metrics_namespace,
            metric_name=SESSIONS_METRIC,
            dimensions_map={"service": SERVICE_NAME},
            statistic="Average",
            period=Duration.minutes(1),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=config.min_count, max_capacity=config.max_count)
        scaling.scale_to_track_custom_metric(
            "SessionsPerTask",
            metric=self.sessions_per_task,
            target_value=config.target_sessions_per_task,
            scale_out_cooldown=Duration.minutes(2),
            scale_in_cooldown=Duration.minutes(15),
        )

    def container_insights_metric(self, metric_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name=metric_name,
            dimensions_map={
                "ClusterName": self.cluster.cluster_name,
                "ServiceName": self.service.service_name,
            },
            statistic="Average",
            period=Duration.minutes(1),
        )
