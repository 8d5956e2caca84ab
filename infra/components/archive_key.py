"""The KMS key that seals session auth archives (docs/session-workers.md, "Archive encryption").

Whoever holds an archive holds the WhatsApp account, so archives are envelope-encrypted by the workers with data
keys from this key. Only the worker task role may use it, and only for archives: GenerateDataKey and Decrypt
require the encryption context `wagw:purpose = auth-archive` (the workers also bind each archive to its session
id there). Automatic rotation is on; old key material stays available to Decrypt, so old archives still open.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.components.workers import Workers

ENV_VAR = "WAGW_AUTH_KMS_KEY_ID"
PURPOSE = "auth-archive"


class ArchiveKey(Construct):
    def __init__(self, scope: Construct, id: str, *, workers: Workers, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Key",
            description="wa-gateway session auth archives (envelope encryption)",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        role = workers.task_definition.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:EncryptionContext:wagw:purpose": PURPOSE}},
            )
        )
        # The worker compares an archive's key with the configured one (lazy re-sealing after a key change).
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:DescribeKey"], resources=[self.key.key_arn]))
        workers.container.add_environment(ENV_VAR, self.key.key_arn)
