"""The whole hybrid for one environment: one stack, one construct per concern."""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, RemovalPolicy, Stack, Tags
from constructs import Construct

from infra.components.api import Api
from infra.components.archive_key import ArchiveKey
from infra.components.common import metrics_namespace
from infra.components.functions import Functions
from infra.components.media import MediaStore
from infra.components.network import Network
from infra.components.observability import Observability
from infra.components.queues import Queues
from infra.components.redis import Redis
from infra.components.schedules import Schedules
from infra.components.secrets import AppSecrets
from infra.components.storage import Storage
from infra.components.workers import Workers
from infra.config import EnvironmentConfig
from infra.nag import acknowledge_findings


class WaGatewayStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        install_dependencies: bool,
        env: Environment,
        description: str,
    ) -> None:
        super().__init__(
            scope, id, env=env, description=description, termination_protection=config.termination_protection
        )
        self.config = config
        Tags.of(self).add("project", "wa-gateway")
        Tags.of(self).add("environment", config.name)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        namespace = metrics_namespace(config.name)

        self.network = Network(self, "Network", config=config.network, removal_policy=removal)
        self.redis = Redis(
            self,
            "Redis",
            config=config.redis,
            vpc=self.network.vpc,
            subnets=self.network.data_subnets,
            removal_policy=removal,
        )
        self.queues = Queues(self, "Queues", removal_policy=removal)
        self.secrets = AppSecrets(self, "Secrets", removal_policy=removal)
        self.storage = Storage(self, "Storage", removal_policy=removal)
        self.functions = Functions(
            self,
            "Functions",
            config=config.functions,
            env_name=config.name,
            vpc=self.network.vpc,
            subnets=self.network.app_subnets,
            redis=self.redis,
            queues=self.queues,
            secrets=self.secrets,
            auth_bucket=self.storage.auth_bucket,
            install_dependencies=install_dependencies,
            removal_policy=removal,
        )
        self.api = Api(
            self,
            "Api",
            config=config.api,
            metrics_namespace=namespace,
            api_function=self.functions.api,
            ingest_function=self.functions.ingest,
            removal_policy=removal,
        )
        ingest_url = self.api.url + "v1/events"
        self.functions.post_events_to(ingest_url)
        self.workers = Workers(
            self,
            "Workers",
            config=config.workers,
            env_name=config.name,
            metrics_namespace=namespace,
            vpc=self.network.vpc,
            subnets=self.network.app_subnets,
            redis=self.redis,
            secrets=self.secrets,
            auth_bucket=self.storage.auth_bucket,
            ingest_url=ingest_url,
            region=self.region,
            removal_policy=removal,
        )
        self.archive_key = ArchiveKey(self, "ArchiveKey", workers=self.workers, removal_policy=removal)
        self.media = MediaStore(
            self,
            "Media",
            retention_days=config.media_retention_days,
            storage=self.storage,
            functions=self.functions,
            workers=self.workers,
            removal_policy=removal,
        )
        self.schedules = Schedules(self, "Schedules", functions=self.functions.by_name, removal_policy=removal)
        self.observability = Observability(
            self,
            "Observability",
            config=config.alarms,
            env_name=config.name,
            queues=self.queues,
            functions=self.functions,
            api=self.api,
            workers=self.workers,
            redis=self.redis,
            removal_policy=removal,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the public API")
        CfnOutput(self, "IngestUrl", value=ingest_url, description="Where workers post events")
        CfnOutput(self, "DeliveriesQueueName", value=self.queues.deliveries.queue_name)
        CfnOutput(self, "DeliveriesQueueUrl", value=self.queues.deliveries.queue_url)
        CfnOutput(self, "DeliveriesDlqName", value=self.queues.dlq.queue_name)
        CfnOutput(self, "DeliveriesDlqUrl", value=self.queues.dlq.queue_url)
        CfnOutput(self, "AuthBucketName", value=self.storage.auth_bucket.bucket_name)
        CfnOutput(self, "MediaBucketName", value=self.media.bucket.bucket_name)
        CfnOutput(self, "RedisEndpoint", value=self.redis.host)
        CfnOutput(self, "RedisAuthSecretArn", value=self.redis.auth_secret.secret_arn)
        CfnOutput(self, "ProducerKeysSecretArn", value=self.secrets.producer_keys.secret_arn)
        CfnOutput(self, "AdminApiKeySecretArn", value=self.secrets.admin_api_key.secret_arn)
        CfnOutput(self, "WorkersClusterName", value=self.workers.cluster.cluster_name)
        CfnOutput(self, "WorkersServiceName", value=self.workers.service.service_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=self.observability.dashboard.dashboard_name)

        acknowledge_findings(self)
