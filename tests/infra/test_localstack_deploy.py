"""The synthesized prod template against a real CloudFormation engine: LocalStack's.

Every resource of a type LocalStack's CloudFormation deploys without Docker (queues and their policies, buckets and
their policies, secrets, log groups and metric filters, IAM roles and policies, EventBridge rules, the KMS key, the
SNS topic and its policy, the alarms on those) is deployed as one stack, as the synthesized template defines it;
everything they reference must be in it too (a resource referring to anything else is left out, and so on). Lambda
functions cannot run there, so the rules' targets are the one rewrite: a literal function ARN in place of the
reference. The deployed resources are then read back with boto3. docs/deploy.md says which resources only the
synthesis tests cover.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from shared import topology
from tests.infra.conftest import Synthesized

DEPLOYABLE = frozenset(
    {
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
        "AWS::Logs::MetricFilter",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::Events::Rule",
        "AWS::KMS::Key",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::CloudWatch::Alarm",
    }
)
PSEUDO = re.compile(r"^AWS::")
PLACEHOLDER_FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:wagw-{}"


def references(fragment: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(fragment, dict):
        for key, value in fragment.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(fragment, list):
        for item in fragment:
            found |= references(item)
    return {name for name in found if not PSEUDO.match(name)}


def _point_rules_at_placeholders(resources: dict[str, Any]) -> None:
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Events::Rule":
            for target in resource["Properties"].get("Targets", []):
                target["Arn"] = PLACEHOLDER_FUNCTION.format(logical_id.lower())


def deployable_template(synthesized: dict[str, Any]) -> dict[str, Any]:
    """The deployable part of a synthesized template: closed under references, no CDK bootstrap checks."""
    resources = copy.deepcopy({k: v for k, v in synthesized["Resources"].items() if v["Type"] in DEPLOYABLE})
    _point_rules_at_placeholders(resources)
    changed = True
    while changed:
        keep = {k: v for k, v in resources.items() if references(v.get("Properties", {})) <= set(resources)}
        changed = len(keep) != len(resources)
        resources = keep
    for resource in resources.values():
        resource.pop("Metadata", None)
        if "DependsOn" in resource:
            depends = resource["DependsOn"] if isinstance(resource["DependsOn"], list) else [resource["DependsOn"]]
            resource["DependsOn"] = [d for d in depends if d in resources]
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


@dataclass
class Deployed:
    template: dict[str, Any]
    physical: dict[str, str]  # logical id -> physical id

    def of_type(self, type_: str) -> dict[str, str]:
        return {k: self.physical[k] for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def one(self, type_: str, prefix: str) -> str:
        (found,) = [p for k, p in self.of_type(type_).items() if re.fullmatch(re.escape(prefix) + "[0-9A-F]{8}", k)]
        return found


def client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


@pytest.fixture(scope="module")
def deployed(prod: Synthesized, aws_endpoint: str) -> Iterator[Deployed]:
    template = deployable_template(prod.json)
    name = f"wagw-cfn-{uuid.uuid4().hex[:8]}"
    cloudformation = client("cloudformation")
    cloudformation.create_stack(
        StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    )
    try:
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
        )
        listed = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
        failed = [r for r in listed if r["ResourceStatus"] != "CREATE_COMPLETE"]
        assert failed == [], failed
        yield Deployed(template, {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed})
    finally:
        cloudformation.delete_stack(StackName=name)


def test_the_deployed_part_covers_what_matters(deployed: Deployed) -> None:
    # Given the stack LocalStack created from the prod template
    types = {v["Type"] for v in deployed.template["Resources"].values()}
    # Then queues, buckets, secrets, log groups, IAM and the schedules were all deployed
    assert {"AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"} <= types
    assert {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::Events::Rule", "AWS::SQS::QueuePolicy"} <= types
    assert {"AWS::KMS::Key", "AWS::SNS::Topic", "AWS::CloudWatch::Alarm", "AWS::Logs::MetricFilter"} <= types
    assert len(deployed.of_type("AWS::SQS::Queue")) == 3 and len(deployed.of_type("AWS::Events::Rule")) == 2


def test_deliveries_queue_outlasts_deliver_and_redrives_to_a_two_week_dlq(
    deployed: Deployed, prod: Synthesized
) -> None:
    sqs = client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=deployed.one("AWS::SQS::Queue", "QueuesDeliveries"), AttributeNames=["All"]
    )
    dlq_url = deployed.one("AWS::SQS::Queue", "QueuesDeliveriesDlq")
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    attributes = queue["Attributes"]
    (deliver,) = [v for k, v in prod.resources.items() if re.fullmatch("FunctionsDeliver[0-9A-F]{8}", k)]
    # Then a message stays invisible for six deliver timeouts, and moves to the DLQ after the receive count
    assert int(attributes["VisibilityTimeout"]) == topology.DELIVERIES_VISIBILITY_TIMEOUT_SECONDS
    assert int(attributes["VisibilityTimeout"]) >= 6 * deliver["Properties"]["Timeout"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == topology.DELIVERIES_MAX_RECEIVE_COUNT
    # And the DLQ keeps messages 14 days and lets the console redrive them; both are encrypted, TLS only
    assert int(dlq["MessageRetentionPeriod"]) == topology.DLQ_RETENTION_SECONDS == 14 * 24 * 3600
    assert json.loads(dlq["RedriveAllowPolicy"])["redrivePermission"] == "allowAll"
    for attrs in (attributes, dlq):
        assert attrs["SqsManagedSseEnabled"] == "true"
        statements = json.loads(attrs["Policy"])["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_buckets_are_encrypted_private_and_expire_what_they_should(deployed: Deployed) -> None:
    s3 = client("s3")
    for bucket in deployed.of_type("AWS::S3::Bucket").values():
        # Then every bucket is encrypted, blocks public access and refuses plain HTTP
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert any(
            s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s.get("Condition")) for s in statements
        )
    # And the auth-archive bucket is versioned
    archives = deployed.one("AWS::S3::Bucket", "StorageAuthArchives")
    assert s3.get_bucket_versioning(Bucket=archives)["Status"] == "Enabled"


def test_secrets_hold_generated_values_of_the_documented_shape(deployed: Deployed) -> None:
    secrets = client("secretsmanager")
    # Then the producer keys are a JSON object under `initial`, the admin key and Redis token are long tokens
    producer = json.loads(
        secrets.get_secret_value(SecretId=deployed.one("AWS::SecretsManager::Secret", "SecretsProducerKeys"))[
            "SecretString"
        ]
    )
    assert list(producer) == ["initial"] and re.fullmatch(r"[A-Za-z0-9]{32}", producer["initial"])
    admin = secrets.get_secret_value(SecretId=deployed.one("AWS::SecretsManager::Secret", "SecretsAdminApiKey"))
    assert re.fullmatch(r"[A-Za-z0-9]{48}", admin["SecretString"])
    token = secrets.get_secret_value(SecretId=deployed.one("AWS::SecretsManager::Secret", "RedisAuthToken"))
    assert re.fullmatch(r"[A-Za-z0-9]{64}", token["SecretString"])


def test_every_log_group_exists(deployed: Deployed) -> None:
    # (their retention is checked on the template only: LocalStack 4.13's CloudFormation ignores RetentionInDays)
    logs = client("logs")
    for logical_id, name in deployed.of_type("AWS::Logs::LogGroup").items():
        found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert [g["logGroupName"] for g in found] == [name], logical_id


def test_roles_trust_their_service_and_policies_attach_to_them(deployed: Deployed, prod: Synthesized) -> None:
    iam = client("iam")
    for logical_id, role_name in deployed.of_type("AWS::IAM::Role").items():
        role = iam.get_role(RoleName=role_name)["Role"]
        wanted = prod.resources[logical_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        trusted = role["AssumeRolePolicyDocument"]
        trusted = json.loads(trusted) if isinstance(trusted, str) else trusted
        # Then each role trusts exactly the service principal the template names
        assert [s["Principal"] for s in trusted["Statement"]] == [s["Principal"] for s in wanted], logical_id
    for logical_id in deployed.of_type("AWS::IAM::Policy"):
        policy = prod.resources[logical_id]["Properties"]
        for role in policy["Roles"]:
            role_name = deployed.physical[role["Ref"]]
            # And each policy is attached inline to its role, with the template's statements
            attached = iam.get_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"])["PolicyDocument"]
            attached = json.loads(attached) if isinstance(attached, str) else attached
            assert len(attached["Statement"]) == len(policy["PolicyDocument"]["Statement"]), logical_id


def test_schedules_fire_as_the_topology_says_without_retrying(deployed: Deployed) -> None:
    events = client("events")
    expressions = {}
    for rule_name in deployed.of_type("AWS::Events::Rule").values():
        rule = events.describe_rule(Name=rule_name)
        (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
        expressions[rule["ScheduleExpression"]] = target
        # Then each rule is on, and its target neither retries nor keeps a tick longer than its period
        assert rule["State"] == "ENABLED"
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert set(expressions) == {s.expression for s in topology.SCHEDULES}
