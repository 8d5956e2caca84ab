"""Typed per-environment settings of the CDK app.

The values live in `cdk.json` (context key `wagw:environments`); only `infra/app.py` reads the context and turns
one entry into an `EnvironmentConfig`, whose parts are passed to the constructs as keyword-only props.
Unknown keys are rejected so a typo in `cdk.json` fails the synth instead of being silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.topology import DELIVER_FUNCTION_TIMEOUT_SECONDS

EnvironmentName = Literal["dev", "staging", "prod"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Config):
    availability_zones: tuple[str, ...] = Field(min_length=2, max_length=3)
    nat_gateways: int = Field(ge=1, le=3)
    cidr: str = "10.40.0.0/16"
    flow_log_retention_days: int = 30

    @model_validator(mode="after")
    def _nat_fits(self) -> NetworkConfig:
        if self.nat_gateways > len(self.availability_zones):
            raise ValueError("nat_gateways cannot exceed the number of availability zones")
        return self


class RedisConfig(_Config):
    node_type: str
    # Total nodes: 1 primary plus replicas. Failover needs at least one replica (in another AZ).
    replicas: int = Field(ge=0, le=5)
    snapshot_retention_days: int = Field(ge=0, le=35)
    engine_version: str = "7.1"
    port: int = 6380

    @property
    def num_nodes(self) -> int:
        return 1 + self.replicas

    @property
    def multi_az(self) -> bool:
        return self.replicas > 0


class FunctionConfig(_Config):
    memory_mb: int = Field(ge=128, le=10240)
    # None: 30 s, or for deliver topology.DELIVER_FUNCTION_TIMEOUT_SECONDS (the only value it may have).
    timeout_seconds: int | None = Field(default=None, ge=1, le=900)
    # None: no reservation (a fresh account's concurrency quota of 10 cannot reserve any).
    reserved_concurrency: int | None = Field(default=None, ge=1)


class FunctionsConfig(_Config):
    api: FunctionConfig
    ingest: FunctionConfig
    deliver: FunctionConfig
    retry_scheduler: FunctionConfig
    cleanup: FunctionConfig
    # The most deliver invocations the SQS event source runs at once (>= 2); protects Redis and tenants.
    deliver_max_concurrency: int = Field(ge=2, le=1000)
    log_retention_days: int = 30

    @model_validator(mode="after")
    def _deliver_timeout_from_topology(self) -> FunctionsConfig:
        timeout = self.deliver.timeout_seconds
        if timeout is not None and timeout != DELIVER_FUNCTION_TIMEOUT_SECONDS:
            raise ValueError(
                f"deliver's timeout is fixed by shared.topology ({DELIVER_FUNCTION_TIMEOUT_SECONDS} s): the queue's"
                " visibility timeout is derived from it"
            )
        return self


class DomainConfig(_Config):
    domain_name: str
    hosted_zone_id: str
    hosted_zone_name: str
    # An existing ACM certificate in the stack's region; when absent one is created and validated through DNS.
    certificate_arn: str | None = None


class ApiConfig(_Config):
    throttle_rate_limit: float = Field(gt=0)
    throttle_burst_limit: int = Field(gt=0)
    access_log_retention_days: int = 90
    domain: DomainConfig | None = None


class WorkersConfig(_Config):
    cpu: int
    memory_mib: int
    # No desired count: autoscaling owns the running count (min_count is its floor). A count in the template would
    # be put back on every deploy, stopping the tasks autoscaling added and handing their sessions over mid-traffic.
    min_count: int = Field(ge=1)
    max_count: int = Field(ge=1)
    # Sessions one task holds at full capacity, and the share of it autoscaling aims for.
    sessions_per_task: int = Field(ge=1)
    target_utilization_percent: int = Field(ge=10, le=100)
    stop_timeout_seconds: int = Field(default=120, ge=30, le=120)
    log_retention_days: int = 30

    @model_validator(mode="after")
    def _counts_ordered(self) -> WorkersConfig:
        if not self.min_count <= self.max_count:
            raise ValueError("workers need min_count <= max_count")
        return self

    @property
    def target_sessions_per_task(self) -> float:
        return self.sessions_per_task * self.target_utilization_percent / 100


class AlarmsConfig(_Config):
    # Who receives the alarms: an email address (subscribed to the stack's topic; confirm the mail) and/or an
    # existing SNS topic (a pager, chat or ticketing integration) every alarm also notifies. Required outside dev.
    email: str | None = None
    topic_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$")
    function_errors_per_5_minutes: int = Field(default=5, ge=1)
    function_throttles_per_5_minutes: int = Field(default=1, ge=1)
    # Older than the longest SQS-delayed retry (15 min) plus a delivery's own time: deliveries are stuck.
    deliveries_oldest_age_seconds: int = Field(default=1800, ge=60)
    # Transitions to `failed` (QR timeouts included) over 15 minutes, as ingest records them.
    sessions_failed_per_15_minutes: int = Field(default=5, ge=1)
    ingest_5xx_percent: float = Field(default=1.0, gt=0)
    ingest_429_percent: float = Field(default=10.0, gt=0)
    redis_cpu_percent: float = Field(default=80.0, gt=0, le=100)
    # Of maxmemory: at 100 % Redis refuses writes (noeviction), so warn well before.
    redis_memory_percent: float = Field(default=70.0, gt=0, le=90)

    @property
    def has_subscriber(self) -> bool:
        return bool(self.email or self.topic_arn)

    def require_subscriber(self, env: str) -> None:
        """Outside dev an alarm nobody receives is no alarm: refuse to synthesize without a subscriber."""
        if env != "dev" and not self.has_subscriber:
            raise ValueError(
                f"{env}: alarms need a subscriber. Set alarms.email or alarms.topic_arn in cdk.json, or pass "
                "-c wagw:alarmEmail=<address> / -c wagw:alarmTopicArn=<arn of an existing SNS topic>"
            )


class EnvironmentConfig(_Config):
    name: EnvironmentName
    account: str | None = None
    region: str
    # Keep data (Redis snapshot on delete, S3 bucket, secrets) when the stack is deleted.
    retain_data: bool
    termination_protection: bool = False
    network: NetworkConfig
    redis: RedisConfig
    functions: FunctionsConfig
    api: ApiConfig
    workers: WorkersConfig
    alarms: AlarmsConfig = AlarmsConfig()
    # Media (uploads and received) expires from the media bucket after this many days.
    media_retention_days: int = Field(default=30, ge=1, le=3650)

    @property
    def stack_name(self) -> str:
        return f"WaGateway-{self.name}"
