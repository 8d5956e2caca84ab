"""cdk-nag (AwsSolutions pack) acknowledgments: every finding the stack keeps, on the construct it concerns,
with its reason. Anything not acknowledged here fails `cdk synth` (the pack runs as a validation plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

if TYPE_CHECKING:
    from infra.stack import WaGatewayStack

PACK = "AwsSolutions"

LAMBDA_MANAGED_POLICIES = (
    "AWSLambdaBasicExecutionRole",  # write to its own log group
    "AWSLambdaVPCAccessExecutionRole",  # create/delete its ENIs in the VPC
)
S3_OBJECT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def _bucket_objects(bucket: s3.IBucket) -> str:
    stack = Stack.of(bucket)
    logical_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    return f"Resource::<{logical_id}.Arn>/*"


def acknowledge_findings(stack: WaGatewayStack) -> None:
    functions = stack.functions
    for function in functions.by_name.values():
        acknowledge(
            function,
            "AwsSolutions-L1",
            "The project is pinned to Python 3.11 (pyproject requires-python <3.12); upgrade with the code base.",
        )
        for policy in LAMBDA_MANAGED_POLICIES:
            acknowledge(
                function,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
                f"{policy} is the AWS-maintained minimum for a Lambda in a VPC (its logs and ENIs).",
            )
        acknowledge(
            function,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
        )

    bucket_reason = (
        "Object-level actions on the auth-archive bucket only (grant_read/grant_delete/grant_read_write); "
        "object keys are per session and not known in advance."
    )
    for principal in (functions.cleanup, stack.workers.task_definition.task_role):
        acknowledge(principal, f"AwsSolutions-IAM5[{_bucket_objects(stack.storage.auth_bucket)}]", bucket_reason)
        for action in S3_OBJECT_ACTIONS:
            if principal is functions.cleanup and action == "s3:Abort*":
                continue
            acknowledge(principal, f"AwsSolutions-IAM5[Action::{action}]", bucket_reason)

    media_reason = (
        "Object-level actions on the media bucket only (grant_put/grant_read/grant_read_write); object keys are per "
        "workspace and media id, not known in advance."
    )
    for principal in (functions.api, stack.workers.task_definition.task_role):
        acknowledge(principal, f"AwsSolutions-IAM5[{_bucket_objects(stack.media.bucket)}]", media_reason)
        for action in (*S3_OBJECT_ACTIONS, "s3:PutObject*"):
            acknowledge(principal, f"AwsSolutions-IAM5[Action::{action}]", media_reason)

    acknowledge(
        stack.schedules.failures,
        "AwsSolutions-SQS3",
        "The schedules' failure destination is itself the last stop for a failed or expired tick (read by people, "
        "alarmed on); a dead-letter queue behind it would only move the same messages once more.",
    )
    acknowledge(
        stack.workers.task_definition,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken (pulling the worker image) supports no resource-level permissions.",
    )
    acknowledge(
        stack.workers.task_definition,
        "AwsSolutions-ECS2",
        "Only non-secret settings are plain environment variables; secrets come from Secrets Manager.",
    )

    for route in ("DefaultRoute", "POST--v1--events"):
        acknowledge(
            stack.api.http_api.node.find_child(route),
            "AwsSolutions-APIG4",
            "Authentication is done by the application: tenant/admin API keys in api, Standard Webhooks producer"
            " signatures in ingest (an API Gateway authorizer cannot verify a signature over the body).",
        )

    secret_reason = (
        "Rotation is an operator runbook (docs/deploy.md): these values are shared with the running Redis/workers"
        " and need an overlap window that single-step Secrets Manager rotation does not give."
    )
    for secret in (stack.redis.auth_secret, stack.secrets.producer_keys, stack.secrets.admin_api_key):
        acknowledge(secret, "AwsSolutions-SMG4", secret_reason)

    if not stack.config.redis.multi_az:
        acknowledge(
            stack.redis.replication_group,
            "AwsSolutions-AEC4",
            f"{stack.config.name} runs one Redis node to save cost; staging and prod have a replica in another AZ.",
        )
