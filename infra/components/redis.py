"""ElastiCache Redis replication group: TLS, encryption at rest, AUTH token from Secrets Manager, failover.

Memory: `maxmemory-policy noeviction`. ElastiCache's default, `volatile-lru`, evicts keys with a TTL first, and
leases, dedupe marks and pending-delivery marks all have one: an evicted lease lets two workers drive a session, an
evicted dedupe mark delivers an event twice. At the limit Redis refuses writes instead (ingest and the API answer
503 with Retry-After; see docs/deploy.md), and the memory alarm fires well before that.

The application gets `WAGW_REDIS_URL` as `rediss://<primary endpoint>:<port>/0` (no credentials in it) and
`WAGW_REDIS_AUTH_SECRET_NAME`, the ARN of the secret whose whole value is the AUTH token.
"""

from __future__ import annotations

from aws_cdk import CfnDeletionPolicy, Fn, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import RedisConfig

MAXMEMORY_POLICY = "noeviction"


def parameter_group_family(engine_version: str) -> str:
    """ElastiCache's parameter group family of a Redis engine version (7.x: `redis7`)."""
    major = int(engine_version.split(".", 1)[0])
    if major < 7:
        raise ValueError(f"Redis {engine_version} is not supported: use 7.0 or later")
    return f"redis{major}"


class Redis(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: RedisConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.port = config.port

        # ElastiCache AUTH tokens: 16-128 printable characters without @ " / ; alphanumerics are always safe.
        self.auth_secret = secretsmanager.Secret(
            self,
            "AuthToken",
            description="wa-gateway Redis AUTH token (the secret's whole value is the token)",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64),
            removal_policy=removal_policy,
        )

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="wa-gateway Redis", allow_all_outbound=False
        )

        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "SubnetGroup",
            description="wa-gateway Redis subnets",
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
        )

        self.parameter_group = elasticache.CfnParameterGroup(
            self,
            "Parameters",
            cache_parameter_group_family=parameter_group_family(config.engine_version),
            description="wa-gateway Redis: never evict (leases, dedupe and delivery marks are state)",
            properties={"maxmemory-policy": MAXMEMORY_POLICY},
        )

        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description="wa-gateway Redis",
            engine="redis",
            engine_version=config.engine_version,
            cache_node_type=config.node_type,
            num_cache_clusters=config.num_nodes,
            automatic_failover_enabled=config.multi_az,
            multi_az_enabled=config.multi_az,
            port=config.port,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            auth_token=self.auth_secret.secret_value.unsafe_unwrap(),
            cache_subnet_group_name=subnet_group.ref,
            cache_parameter_group_name=self.parameter_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            snapshot_retention_limit=config.snapshot_retention_days,
            auto_minor_version_upgrade=True,
        )
        deletion = CfnDeletionPolicy.SNAPSHOT if removal_policy == RemovalPolicy.RETAIN else CfnDeletionPolicy.DELETE
        self.replication_group.cfn_options.deletion_policy = deletion
        self.replication_group.cfn_options.update_replace_policy = deletion

        self.host = self.replication_group.attr_primary_end_point_address
        self.url = Fn.join("", ["rediss://", self.host, ":", str(config.port), "/0"])

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        self.security_group.connections.allow_from(peer, ec2.Port.tcp(self.port), description)

    def node_metric(self, metric_name: str, node: int) -> cloudwatch.Metric:
        """A per-node metric; node ids are `<replication group id>-001`, `-002`, ..."""
        return cloudwatch.Metric(
            namespace="AWS/ElastiCache",
            metric_name=metric_name,
            dimensions_map={"CacheClusterId": Fn.join("-", [self.replication_group.ref, f"{node:03d}"])},
            statistic="Maximum",
        )

    def max_over_nodes(self, metric_name: str, key: str, label: str) -> cloudwatch.MathExpression:
        """The maximum over all nodes; `key` prefixes the per-node ids (unique within one graph)."""
        metrics = {f"{key}{i}": self.node_metric(metric_name, i) for i in range(1, self.config.num_nodes + 1)}
        expression = f"MAX([{', '.join(metrics)}])" if len(metrics) > 1 else next(iter(metrics))
        return cloudwatch.MathExpression(expression=expression, using_metrics=metrics, label=label)
