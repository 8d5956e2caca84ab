"""Application secrets in Secrets Manager (the Redis AUTH token lives with Redis).

- producer keys: a JSON object `{"<key name>": "whsec_<base64>"}`; producers sign with every key, ingest accepts
  a match with any (the rule is stated in shared/producer.py, the rotation in docs/deploy.md). The generated
  first value is a 32-character alphanumeric string, which is valid base64 (24 bytes), under the key name
  `initial`; rotate it to a `whsec_` key as docs/deploy.md describes.
- admin API key: the secret's whole value is the key.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


class AppSecrets(Construct):
    def __init__(self, scope: Construct, id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        self.producer_keys = secretsmanager.Secret(
            self,
            "ProducerKeys",
            description="wa-gateway producer signing keys: JSON object of key name to whsec_ secret",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",
                generate_string_key="initial",
                exclude_punctuation=True,
                password_length=32,
            ),
            removal_policy=removal_policy,
        )
        self.admin_api_key = secretsmanager.Secret(
            self,
            "AdminApiKey",
            description="wa-gateway admin API key (the secret's whole value is the key)",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            removal_policy=removal_policy,
        )
