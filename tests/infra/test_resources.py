"""Assertions on the synthesized templates: the properties issue 7 asks for, per environment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.app import ENVIRONMENTS_KEY, cdk_json_context
from shared import topology
from tests.infra.conftest import ALARM_TOPIC_ARN, Synthesized

FUNCTIONS = {
    "api": "FunctionsApi",
    "ingest": "FunctionsIngest",
    "deliver": "FunctionsDeliver",
    "retry_scheduler": "FunctionsRetryScheduler",
    "cleanup": "FunctionsCleanup",
}


def logical(s: Synthesized, type_: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource whose logical id is `prefix` plus CDK's 8-character hash."""
    found = [(k, v) for k, v in s.of_type(type_).items() if re.fullmatch(re.escape(prefix) + "[0-9A-F]{8}", k)]
    assert len(found) == 1, f"{s.env}: expected one {type_} {prefix}, found {[k for k, _ in found]}"
    return found[0]


def props(s: Synthesized, type_: str, prefix: str) -> dict[str, Any]:
    return logical(s, type_, prefix)[1]["Properties"]


def refs(value: Any) -> set[str]:
    """Logical ids referenced (Ref / GetAtt) anywhere in a template fragment."""
    text = json.dumps(value)
    return set(re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)) | set(
        re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)"', text)
    )


# --- queues ---------------------------------------------------------------------------------------------------


def test_deliveries_queue_redrives_to_an_encrypted_dlq(each_env: Synthesized) -> None:
    dlq_id, dlq = logical(each_env, "AWS::SQS::Queue", "QueuesDeliveriesDlq")
    queue = props(each_env, "AWS::SQS::Queue", "QueuesDeliveries")
    deliver = props(each_env, "AWS::Lambda::Function", FUNCTIONS["deliver"])

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": topology.DELIVERIES_MAX_RECEIVE_COUNT,
    }
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["VisibilityTimeout"] >= 6 * deliver["Timeout"]
    assert deliver["Timeout"] == topology.DELIVER_FUNCTION_TIMEOUT_SECONDS
    assert queue["SqsManagedSseEnabled"] is True and dlq["Properties"]["SqsManagedSseEnabled"] is True
    # the console's "Start DLQ redrive" needs the DLQ to allow its source queue
    assert dlq["Properties"]["RedriveAllowPolicy"] == {"redrivePermission": "allowAll"}


def test_queues_refuse_plain_http(each_env: Synthesized) -> None:
    for prefix in ("QueuesDeliveriesPolicy", "QueuesDeliveriesDlqPolicy"):
        statements = props(each_env, "AWS::SQS::QueuePolicy", prefix)["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_deliver_consumes_the_queue_with_partial_batch_failures(each_env: Synthesized) -> None:
    (mapping,) = each_env.of_type("AWS::Lambda::EventSourceMapping").values()
    p = mapping["Properties"]
    assert refs(p["EventSourceArn"]) == {logical(each_env, "AWS::SQS::Queue", "QueuesDeliveries")[0]}
    assert refs(p["FunctionName"]) == {logical(each_env, "AWS::Lambda::Function", FUNCTIONS["deliver"])[0]}
    assert p["BatchSize"] == topology.DELIVER_BATCH_SIZE
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["ScalingConfig"]["MaximumConcurrency"] >= 2


# --- redis ----------------------------------------------------------------------------------------------------


def test_redis_is_encrypted_with_an_auth_token_from_secrets_manager(each_env: Synthesized) -> None:
    secret_id, _ = logical(each_env, "AWS::SecretsManager::Secret", "RedisAuthToken")
    redis = props(each_env, "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")
    assert redis["TransitEncryptionEnabled"] is True
    assert redis["TransitEncryptionMode"] == "required"
    assert redis["AtRestEncryptionEnabled"] is True
    assert json.dumps(redis["AuthToken"]).startswith('{"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "')
    assert refs(redis["AuthToken"]) == {secret_id}


@pytest.mark.parametrize(("env", "nodes", "multi_az"), [("dev", 1, False), ("staging", 2, True), ("prod", 3, True)])
def test_redis_fails_over_to_another_az_in_staging_and_prod(
    synthesized: Any, env: str, nodes: int, multi_az: bool
) -> None:
    redis = props(synthesized(env), "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")
    assert redis["NumCacheClusters"] == nodes
    assert redis["AutomaticFailoverEnabled"] is multi_az
    assert redis["MultiAZEnabled"] is multi_az


def test_redis_snapshots_and_node_size_follow_the_environment(dev: Synthesized, prod: Synthesized) -> None:
    dev_redis = props(dev, "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")
    prod_redis = props(prod, "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")
    assert prod_redis["SnapshotRetentionLimit"] > dev_redis["SnapshotRetentionLimit"]
    assert prod_redis["CacheNodeType"] != dev_redis["CacheNodeType"]
    assert (
        logical(prod, "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")[1]["DeletionPolicy"] == "Snapshot"
    )


def test_redis_accepts_only_the_lambdas_and_workers(each_env: Synthesized) -> None:
    redis_sg, _ = logical(each_env, "AWS::EC2::SecurityGroup", "RedisSecurityGroup")
    ingress = [
        r["Properties"]
        for r in each_env.of_type("AWS::EC2::SecurityGroupIngress").values()
        if refs(r["Properties"]["GroupId"]) == {redis_sg}
    ]
    sources = {next(iter(refs(r["SourceSecurityGroupId"]))) for r in ingress}
    assert sources == {
        logical(each_env, "AWS::EC2::SecurityGroup", "FunctionsSecurityGroup")[0],
        logical(each_env, "AWS::EC2::SecurityGroup", "WorkersSecurityGroup")[0],
    }
    assert all(r["FromPort"] == r["ToPort"] == 6380 for r in ingress)


# --- network --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "azs", "nats"), [("dev", 2, 1), ("staging", 2, 1), ("prod", 3, 3)])
def test_vpc_spans_the_azs_with_nat_per_az_in_prod(synthesized: Any, env: str, azs: int, nats: int) -> None:
    s = synthesized(env)
    subnet_azs = {v["Properties"]["AvailabilityZone"] for v in s.of_type("AWS::EC2::Subnet").values()}
    assert len(subnet_azs) == azs
    assert len(s.of_type("AWS::EC2::NatGateway")) == nats
    subnet_group = props(s, "AWS::ElastiCache::SubnetGroup", "RedisSubnetGroup")
    assert len(subnet_group["SubnetIds"]) == azs


def test_vpc_has_endpoints_for_the_aws_services_it_uses(each_env: Synthesized) -> None:
    names = json.dumps([v["Properties"]["ServiceName"] for v in each_env.of_type("AWS::EC2::VPCEndpoint").values()])
    for service in ("sqs", "secretsmanager", "ecr.api", "ecr.dkr", "logs", "s3"):
        assert f'.{service}"' in names, f"no VPC endpoint for {service}: {names}"
    assert len(each_env.of_type("AWS::EC2::FlowLog")) == 1


# --- functions ------------------------------------------------------------------------------------------------


def test_functions_run_python_on_arm64_in_the_vpc_with_the_dependencies_layer(each_env: Synthesized) -> None:
    layer_id, _ = logical(each_env, "AWS::Lambda::LayerVersion", "FunctionsDependencies")
    for name, prefix in FUNCTIONS.items():
        fn = props(each_env, "AWS::Lambda::Function", prefix)
        assert fn["Runtime"] == "python3.11"
        assert fn["Architectures"] == ["arm64"]
        assert fn["Handler"] == f"functions.{name}.handler.handler"
        assert refs(fn["Layers"]) == {layer_id}
        assert len(fn["VpcConfig"]["SubnetIds"]) >= 2
        assert fn["TracingConfig"] == {"Mode": "Active"}
        variables = fn["Environment"]["Variables"]
        assert variables["WAGW_ENV"] == each_env.env
        assert json.dumps(variables["WAGW_REDIS_URL"]).startswith('{"Fn::Join": ["", ["rediss://"')
        for key in (
            "WAGW_REDIS_AUTH_SECRET_NAME",
            "WAGW_DELIVERIES_QUEUE_URL",
            "WAGW_DELIVERIES_DLQ_URL",
            "WAGW_AUTH_BUCKET",
            "WAGW_PRODUCER_KEYS_SECRET_NAME",
            "WAGW_ADMIN_API_KEY_SECRET_NAME",
        ):
            assert key in variables, f"{name} misses {key}"


def test_buckets_expire_old_auth_archive_versions_and_access_logs(each_env: Synthesized) -> None:
    # (synthesis only: LocalStack 4.13's CloudFormation ignores a bucket's LifecycleConfiguration)
    archives = props(each_env, "AWS::S3::Bucket", "StorageAuthArchives")
    access_logs = props(each_env, "AWS::S3::Bucket", "StorageAccessLogs")
    assert archives["VersioningConfiguration"] == {"Status": "Enabled"}
    assert archives["LifecycleConfiguration"]["Rules"] == [
        {"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "Status": "Enabled"}
    ]
    assert access_logs["LifecycleConfiguration"]["Rules"] == [{"ExpirationInDays": 90, "Status": "Enabled"}]


def test_every_log_group_expires_its_logs(each_env: Synthesized) -> None:
    # (synthesis only: LocalStack 4.13's CloudFormation ignores RetentionInDays)
    groups = each_env.of_type("AWS::Logs::LogGroup")
    assert groups and all(g["Properties"].get("RetentionInDays", 0) > 0 for g in groups.values())


def test_no_environment_relaxes_the_webhook_url_check(each_env: Synthesized) -> None:
    # Given every function's and the workers' environment (dev runs with WAGW_ENV=dev)
    functions = [props(each_env, "AWS::Lambda::Function", p)["Environment"]["Variables"] for p in FUNCTIONS.values()]
    (container,) = props(each_env, "AWS::ECS::TaskDefinition", "WorkersTask")["ContainerDefinitions"]
    workers = {e["Name"]: e["Value"] for e in container["Environment"]}
    # Then none sets the local-only switch: the URL check is as strict in the dev stack as in prod
    for variables in [*functions, workers]:
        assert "WAGW_ALLOW_LOCAL_WEBHOOKS" not in variables


def test_prod_reserves_concurrency_to_protect_redis(prod: Synthesized, dev: Synthesized) -> None:
    for prefix in (FUNCTIONS["api"], FUNCTIONS["ingest"], FUNCTIONS["deliver"]):
        assert props(prod, "AWS::Lambda::Function", prefix)["ReservedConcurrentExecutions"] >= 1
    # a fresh dev account (concurrency quota 10) cannot reserve any
    assert "ReservedConcurrentExecutions" not in props(dev, "AWS::Lambda::Function", FUNCTIONS["api"])


def test_function_assets_hold_shared_and_their_own_package(dev: Synthesized) -> None:
    seen = set()
    for name, prefix in FUNCTIONS.items():
        _, fn = logical(dev, "AWS::Lambda::Function", prefix)
        asset = dev.outdir / fn["Metadata"]["aws:asset:path"]
        assert (asset / "functions" / name / "handler.py").is_file()
        assert (asset / "shared" / "settings.py").is_file()
        assert (asset / "shared" / "topology.py").is_file()
        others = [p.name for p in (asset / "functions").iterdir() if p.is_dir()]
        assert others == [name], f"{name}'s asset also holds {others}"
        assert not list(asset.rglob("__pycache__"))
        seen.add(fn["Metadata"]["aws:asset:path"])
    assert len(seen) == len(FUNCTIONS)


# --- IAM ------------------------------------------------------------------------------------------------------

NO_RESOURCE_LEVEL = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken"}


def statements_of(s: Synthesized, role_prefix: str) -> list[dict[str, Any]]:
    role_id, _ = logical(s, "AWS::IAM::Role", role_prefix)
    found = []
    for policy in s.of_type("AWS::IAM::Policy").values():
        if role_id in refs(policy["Properties"]["Roles"]):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def granted(s: Synthesized, role_prefix: str, action: str) -> set[str]:
    """Logical ids of the resources on which the role may do `action`."""
    out: set[str] = set()
    for st in statements_of(s, role_prefix):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if action in actions:
            out |= refs(st["Resource"]) or {"*"}
    return out


def test_no_policy_grants_everything(each_env: Synthesized) -> None:
    for policy in each_env.of_type("AWS::IAM::Policy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), st
            if st["Resource"] == "*":
                assert set(actions) <= NO_RESOURCE_LEVEL, st


def test_each_function_reaches_only_its_own_resources(each_env: Synthesized) -> None:
    s = each_env
    queue = logical(s, "AWS::SQS::Queue", "QueuesDeliveries")[0]
    dlq = logical(s, "AWS::SQS::Queue", "QueuesDeliveriesDlq")[0]
    redis_token = logical(s, "AWS::SecretsManager::Secret", "RedisAuthToken")[0]
    producer_keys = logical(s, "AWS::SecretsManager::Secret", "SecretsProducerKeys")[0]
    admin_key = logical(s, "AWS::SecretsManager::Secret", "SecretsAdminApiKey")[0]
    bucket = logical(s, "AWS::S3::Bucket", "StorageAuthArchives")[0]
    role = {name: f"{prefix}ServiceRole" for name, prefix in FUNCTIONS.items()}

    assert granted(s, role["ingest"], "sqs:SendMessage") == {queue}
    assert granted(s, role["deliver"], "sqs:SendMessage") == {queue, dlq}
    assert granted(s, role["deliver"], "sqs:ReceiveMessage") == {queue}
    schedule_failures = logical(s, "AWS::SQS::Queue", "SchedulesFailures")[0]
    assert granted(s, role["retry_scheduler"], "sqs:SendMessage") == {queue, schedule_failures}
    assert granted(s, role["cleanup"], "sqs:SendMessage") == {schedule_failures}
    assert granted(s, role["api"], "sqs:SendMessage") == {queue}
    assert granted(s, role["ingest"], "secretsmanager:GetSecretValue") == {redis_token, producer_keys}
    assert granted(s, role["api"], "secretsmanager:GetSecretValue") == {redis_token, admin_key}
    assert granted(s, role["cleanup"], "secretsmanager:GetSecretValue") == {redis_token, producer_keys}
    for name in ("deliver", "retry_scheduler"):
        assert granted(s, role[name], "secretsmanager:GetSecretValue") == {redis_token}
    assert granted(s, role["cleanup"], "s3:DeleteObject*") == {bucket}
    media = logical(s, "AWS::S3::Bucket", "MediaBucket")[0]
    assert granted(s, role["api"], "s3:GetObject*") == {media}  # presigned downloads and upload checks
    for name in ("ingest", "deliver", "retry_scheduler"):
        assert granted(s, role[name], "s3:GetObject*") == set()
    for name in ("api", "ingest", "deliver", "retry_scheduler"):
        assert granted(s, role[name], "sqs:ReceiveMessage") == (set() if name != "deliver" else {queue})


def test_workers_reach_the_auth_bucket_and_their_secrets_only(each_env: Synthesized) -> None:
    s = each_env
    bucket = logical(s, "AWS::S3::Bucket", "StorageAuthArchives")[0]
    media = logical(s, "AWS::S3::Bucket", "MediaBucket")[0]
    assert granted(s, "WorkersTaskTaskRole", "s3:PutObject") == {bucket, media}
    assert granted(s, "WorkersTaskTaskRole", "secretsmanager:GetSecretValue") == {
        logical(s, "AWS::SecretsManager::Secret", "RedisAuthToken")[0]
    }
    assert granted(s, "WorkersTaskExecutionRole", "secretsmanager:GetSecretValue") == {
        logical(s, "AWS::SecretsManager::Secret", "SecretsProducerKeys")[0]
    }
    assert granted(s, "WorkersTaskTaskRole", "sqs:SendMessage") == set()


# --- API ------------------------------------------------------------------------------------------------------


def test_http_api_routes_events_to_ingest_and_the_rest_to_api(each_env: Synthesized) -> None:
    s = each_env
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in s.of_type("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"POST /v1/events", "$default"}
    integrations = s.of_type("AWS::ApiGatewayV2::Integration")

    def target_function(route: dict[str, Any]) -> set[str]:
        (integration_id,) = refs(route["Target"])
        return refs(integrations[integration_id]["Properties"]["IntegrationUri"])

    assert target_function(routes["POST /v1/events"]) == {logical(s, "AWS::Lambda::Function", FUNCTIONS["ingest"])[0]}
    assert target_function(routes["$default"]) == {logical(s, "AWS::Lambda::Function", FUNCTIONS["api"])[0]}
    # without a custom domain the execute-api URL is the API's address (with one, it is disabled: test_config.py)
    assert not props(s, "AWS::ApiGatewayV2::Api", "ApiHttpApi").get("DisableExecuteApiEndpoint", False)


def test_cleanup_posts_its_events_to_the_ingest_route_of_this_api(each_env: Synthesized) -> None:
    # Given the synthesized stack
    s = each_env
    (http_api,) = s.of_type("AWS::ApiGatewayV2::Api")
    # When reading the cleanup function's environment
    env = props(s, "AWS::Lambda::Function", FUNCTIONS["cleanup"])["Environment"]["Variables"]
    # Then its ingest URL is this API's /v1/events and it can read the producer key to sign with
    assert refs(env["WAGW_INGEST_URL"]) == {http_api}
    assert "/v1/events" in json.dumps(env["WAGW_INGEST_URL"])
    assert "WAGW_PRODUCER_KEYS_SECRET_NAME" in env


def test_http_api_stage_throttles_and_logs_json_with_status(each_env: Synthesized) -> None:
    stage = props(each_env, "AWS::ApiGatewayV2::Stage", "ApiDefaultStage")
    assert stage["StageName"] == "$default"
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    log_format = stage["AccessLogSettings"]["Format"]
    assert '"status": $context.status' in log_format and '"routeKey": "$context.routeKey"' in log_format
    assert refs(stage["AccessLogSettings"]["DestinationArn"]) == {
        logical(each_env, "AWS::Logs::LogGroup", "ApiAccessLogs")[0]
    }
    patterns = {
        p["FilterPattern"] for p in (f["Properties"] for f in each_env.of_type("AWS::Logs::MetricFilter").values())
    }
    assert '{ ($.routeKey = "POST /v1/events") && ($.status = 429) }' in patterns
    assert '{ ($.routeKey = "POST /v1/events") && ($.status >= 500) }' in patterns


# --- workers --------------------------------------------------------------------------------------------------


def test_workers_service_deploys_safely_and_checks_health(each_env: Synthesized) -> None:
    task = props(each_env, "AWS::ECS::TaskDefinition", "WorkersTask")
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == ["python", "-m", "session_workers"]
    assert "http://127.0.0.1:8090/healthz" in " ".join(container["HealthCheck"]["Command"])
    assert container["PortMappings"][0]["ContainerPort"] == 8090
    assert container["StopTimeout"] == 120
    assert [s["Name"] for s in container["Secrets"]] == ["WAGW_PRODUCER_KEYS"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["WAGW_ENV"] == each_env.env
    assert "WAGW_INGEST_URL" in env and "WAGW_REDIS_AUTH_SECRET_NAME" in env
    secret_like = [n for n in env if "KEY" in n and not n.endswith(("SECRET_NAME", "KMS_KEY_ID"))]
    assert secret_like == [], "a secret in plain environment"
    service = props(each_env, "AWS::ECS::Service", "WorkersService")
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    cluster = props(each_env, "AWS::ECS::Cluster", "WorkersCluster")
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


def test_worker_image_is_built_from_the_session_workers_dockerfile(each_env: Synthesized) -> None:
    assets = json.loads((each_env.outdir / f"WaGateway-{each_env.env}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "session_workers/Dockerfile"
    context = each_env.outdir / image["source"]["directory"]
    assert (context / "session_workers" / "Dockerfile").is_file()
    for needed in ("shared", "session_workers", "pyproject.toml", "package.json", "package-lock.json"):
        assert (context / needed).exists(), f"{needed} (copied by the Dockerfile) is not in the build context"
    for heavy in (".venv", ".git", "node_modules", "tests", "infra", "cdk.out"):
        assert not (context / heavy).exists(), f"{heavy} is in the worker build context"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_workers_scale_on_sessions_per_task_against_capacity(synthesized: Any, env: str) -> None:
    s = synthesized(env)
    target = props(s, "AWS::ApplicationAutoScaling::ScalableTarget", "WorkersServiceTaskCountTarget")
    policy = props(s, "AWS::ApplicationAutoScaling::ScalingPolicy", "WorkersServiceTaskCountTargetSessionsPerTask")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ActiveSessions"
    assert metric["Namespace"] == f"WaGateway/{env}"
    assert metric["Statistic"] == "Average"
    assert metric["Dimensions"] == [{"Name": "service", "Value": "wagw-session-workers"}]
    task = props(s, "AWS::ECS::TaskDefinition", "WorkersTask")
    (container,) = task["ContainerDefinitions"]
    capacity = int({e["Name"]: e["Value"] for e in container["Environment"]}["WAGW_WORKER_CAPACITY"])
    assert 0 < tracking["TargetValue"] < capacity
    assert target["MaxCapacity"] >= target["MinCapacity"] >= 1


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_deploy_leaves_the_running_worker_count_to_autoscaling(synthesized: Any, env: str) -> None:
    # Given the synthesized service and its scalable target
    s = synthesized(env)
    service = props(s, "AWS::ECS::Service", "WorkersService")
    target = props(s, "AWS::ApplicationAutoScaling::ScalableTarget", "WorkersServiceTaskCountTarget")
    workers = cdk_json_context()[ENVIRONMENTS_KEY][env]["workers"]
    # Then the template sets no count CloudFormation would put back on each deploy; autoscaling's floor is the minimum
    assert "DesiredCount" not in service
    assert (target["MinCapacity"], target["MaxCapacity"]) == (workers["min_count"], workers["max_count"])


# --- schedules ------------------------------------------------------------------------------------------------


def test_schedules_invoke_cleanup_and_retry_scheduler(each_env: Synthesized) -> None:
    rules = {
        r["Properties"]["ScheduleExpression"]: r["Properties"] for r in each_env.of_type("AWS::Events::Rule").values()
    }
    assert set(rules) == {topology.CLEANUP_SCHEDULE.expression, topology.RETRY_SCHEDULER_SCHEDULE.expression}
    assert topology.CLEANUP_SCHEDULE.expression == "rate(15 minutes)"
    for schedule in topology.SCHEDULES:
        (target,) = rules[schedule.expression]["Targets"]
        function_id = logical(each_env, "AWS::Lambda::Function", FUNCTIONS[schedule.function])[0]
        assert refs(target["Arn"]) == {function_id}


def test_scheduled_functions_never_retry_a_tick_and_report_failed_ones(each_env: Synthesized) -> None:
    # Given the asynchronous invoke configurations of the functions the schedules invoke
    failures_id, failures = logical(each_env, "AWS::SQS::Queue", "SchedulesFailures")
    configs = {
        refs(c["Properties"]["FunctionName"]).pop(): c["Properties"]
        for c in each_env.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    for schedule in topology.SCHEDULES:
        function_id = logical(each_env, "AWS::Lambda::Function", FUNCTIONS[schedule.function])[0]
        config = configs[function_id]
        # Then Lambda's defaults (2 retries, events kept 6 h) are overridden: no retry, a one-minute maximum age
        assert config["MaximumRetryAttempts"] == 0 and config["MaximumEventAgeInSeconds"] == 60
        # And a tick that fails or expires lands on an encrypted queue instead of vanishing
        assert refs(config["DestinationConfig"]["OnFailure"]["Destination"]) == {failures_id}
    assert failures["Properties"]["SqsManagedSseEnabled"] is True
    assert len(configs) == len(topology.SCHEDULES)


# --- observability --------------------------------------------------------------------------------------------

ALARMS = (
    "DlqHasMessages",
    "DeliveriesOldestMessage",
    *(f"{prefix.removeprefix('Functions')}{kind}" for prefix in FUNCTIONS.values() for kind in ("Errors", "Throttles")),
    "RetrySchedulerNotRunning",
    "SessionsFailed",
    "Ingest5xxRate",
    "Ingest429Rate",
    "WorkersBelowDesired",
    "WorkersBelowMinimum",
    "RedisCpu",
    "RedisMemory",
    "WaJsIncompatible",
)


def test_alarms_notify_the_encrypted_sns_topic(each_env: Synthesized) -> None:
    topic_id, topic = logical(each_env, "AWS::SNS::Topic", "ObservabilityAlarms")
    assert refs(topic["Properties"]["KmsMasterKeyId"]) == {
        logical(each_env, "AWS::KMS::Key", "ObservabilityAlarmsKey")[0]
    }
    for name in ALARMS:
        alarm = props(each_env, "AWS::CloudWatch::Alarm", f"Observability{name}")
        assert refs(alarm["AlarmActions"]) == {topic_id}, name
    assert len(each_env.of_type("AWS::CloudWatch::Alarm")) == len(ALARMS)
    assert len(each_env.of_type("AWS::CloudWatch::Dashboard")) == 1


def test_outside_dev_every_alarm_reaches_the_subscriber_the_deployer_named(
    staging: Synthesized, prod: Synthesized
) -> None:
    # Given staging and prod synthesized with -c wagw:alarmTopicArn=<an existing topic>
    for s in (staging, prod):
        # Then every alarm notifies that topic as well as the stack's own, on alarm and on recovery
        for alarm in s.of_type("AWS::CloudWatch::Alarm").values():
            assert ALARM_TOPIC_ARN in alarm["Properties"]["AlarmActions"]
            assert ALARM_TOPIC_ARN in alarm["Properties"]["OKActions"]


def test_stuck_deliveries_silent_schedulers_missing_workers_and_failed_sessions_alarm(prod: Synthesized) -> None:
    # Given prod's alarms
    def alarm(name: str) -> dict[str, Any]:
        return props(prod, "AWS::CloudWatch::Alarm", f"Observability{name}")

    # Then a delivery waiting 30 minutes on the queue alarms
    oldest = alarm("DeliveriesOldestMessage")
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage" and oldest["Threshold"] == 1800
    # And every function's errors and throttles alarm
    for prefix in FUNCTIONS.values():
        function_id = logical(prod, "AWS::Lambda::Function", prefix)[0]
        for kind in ("Errors", "Throttles"):
            watched = alarm(f"{prefix.removeprefix('Functions')}{kind}")
            assert watched["MetricName"] == kind and refs(watched["Dimensions"]) == {function_id}
    # And a retry scheduler that has not been invoked for 10 minutes alarms, also when no data arrives at all
    silent = alarm("RetrySchedulerNotRunning")
    assert silent["MetricName"] == "Invocations" and silent["ComparisonOperator"] == "LessThanThreshold"
    assert silent["TreatMissingData"] == "breaching" and silent["Period"] * silent["EvaluationPeriods"] == 600
    # And fewer running workers than autoscaling's minimum alarm
    below = alarm("WorkersBelowMinimum")
    target = props(prod, "AWS::ApplicationAutoScaling::ScalableTarget", "WorkersServiceTaskCountTarget")
    assert below["MetricName"] == "RunningTaskCount" and below["Threshold"] == target["MinCapacity"]
    assert below["ComparisonOperator"] == "LessThanThreshold"
    # And sessions that ingest records as failed alarm
    failed = alarm("SessionsFailed")
    assert (failed["Namespace"], failed["MetricName"]) == ("WaGateway/prod", "sessions_failed")
    assert failed["Dimensions"] == [{"Name": "service", "Value": "wagw-ingest"}]


def test_dlq_alarm_fires_on_the_first_message(each_env: Synthesized) -> None:
    alarm = props(each_env, "AWS::CloudWatch::Alarm", "ObservabilityDlqHasMessages")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert refs(alarm["Dimensions"]) == {logical(each_env, "AWS::SQS::Queue", "QueuesDeliveriesDlq")[0]}
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_redis_never_evicts_state_and_warns_well_before_full(each_env: Synthesized) -> None:
    # Given the replication group and its parameter group
    group_id, group = logical(each_env, "AWS::ElastiCache::ParameterGroup", "RedisParameters")
    replication = props(each_env, "AWS::ElastiCache::ReplicationGroup", "RedisReplicationGroup")
    # Then Redis refuses writes at its limit instead of evicting leases and dedupe marks (which have TTLs)
    assert group["Properties"]["Properties"] == {"maxmemory-policy": "noeviction"}
    assert group["Properties"]["CacheParameterGroupFamily"] == "redis7"
    assert refs(replication["CacheParameterGroupName"]) == {group_id}
    # And the memory alarm fires at 70 % of maxmemory, within one 5-minute period
    alarm = props(each_env, "AWS::CloudWatch::Alarm", "ObservabilityRedisMemory")
    assert alarm["Threshold"] <= 70 and alarm["EvaluationPeriods"] == 1


def test_redis_alarms_watch_every_node(prod: Synthesized) -> None:
    alarm = props(prod, "AWS::CloudWatch::Alarm", "ObservabilityRedisMemory")
    node_metrics = [m for m in alarm["Metrics"] if "MetricStat" in m]
    assert len(node_metrics) == 3
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in node_metrics} == {"DatabaseMemoryUsagePercentage"}


def test_a_wa_js_that_cannot_hook_whatsapp_web_alarms_on_the_first_session(prod: Synthesized) -> None:
    # Given the workers count the sessions that failed with wa_js_incompatible (EMF, service dimension only)
    alarm = props(prod, "AWS::CloudWatch::Alarm", "ObservabilityWaJsIncompatible")
    # Then one such session in 5 minutes alarms
    assert (alarm["Namespace"], alarm["MetricName"]) == ("WaGateway/prod", "WaJsIncompatible")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "wagw-session-workers"}]
    assert alarm["Threshold"] == 1 and alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# --- media ----------------------------------------------------------------------------------------------------


def test_media_bucket_is_private_encrypted_expiring_and_open_to_presigned_browser_use(each_env: Synthesized) -> None:
    bucket = props(each_env, "AWS::S3::Bucket", "MediaBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30 and rule["Status"] == "Enabled"
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert sorted(cors["AllowedMethods"]) == ["GET", "HEAD", "PUT"]


def test_the_api_and_the_workers_get_the_media_bucket_and_only_what_they_need(each_env: Synthesized) -> None:
    bucket_id, _ = logical(each_env, "AWS::S3::Bucket", "MediaBucket")
    api = logical(each_env, "AWS::Lambda::Function", FUNCTIONS["api"])[1]
    (container,) = props(each_env, "AWS::ECS::TaskDefinition", "WorkersTask")["ContainerDefinitions"]
    worker_env = {e["Name"]: e["Value"] for e in container["Environment"]}
    # Then both are told the bucket and the retention
    assert refs(api["Properties"]["Environment"]["Variables"]["WAGW_MEDIA_BUCKET"]) == {bucket_id}
    assert refs(worker_env["WAGW_MEDIA_BUCKET"]) == {bucket_id}
    assert worker_env["WAGW_MEDIA_RETENTION_DAYS"] == "30"

    # And the API may put and read media (it presigns), the workers read and write it, nobody may delete it
    assert granted(each_env, "FunctionsApiServiceRole", "s3:PutObject") == {bucket_id}
    assert granted(each_env, "FunctionsApiServiceRole", "s3:DeleteObject*") == set()
    assert bucket_id in granted(each_env, "WorkersTaskTaskRole", "s3:GetObject*")
    for prefix in ("FunctionsIngest", "FunctionsDeliver", "FunctionsRetryScheduler", "FunctionsCleanup"):
        assert bucket_id not in granted(each_env, f"{prefix}ServiceRole", "s3:PutObject")
