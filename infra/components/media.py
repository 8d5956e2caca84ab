"""The media bucket (`WAGW_MEDIA_BUCKET`): what tenants upload to send by reference, and what sessions receive.

Objects live under `media/<workspace_id>/`, encrypted at rest, and expire after `media_retention_days` (the
records in Redis expire with them). Tenants never get bucket credentials: the API hands out presigned PUTs (type
and length signed) and GETs, so the API function may put and read objects; the workers read uploads and write
received media. CORS lets a browser (the console) PUT and GET with those presigned URLs.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.functions import Functions
from infra.components.storage import Storage
from infra.components.workers import Workers
from shared import topology

ENV_BUCKET = "WAGW_MEDIA_BUCKET"
ENV_RETENTION = "WAGW_MEDIA_RETENTION_DAYS"


class MediaStore(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        retention_days: int,
        storage: Storage,
        functions: Functions,
        workers: Workers,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=storage.access_logs,
            server_access_logs_prefix="media/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(retention_days), abort_incomplete_multipart_upload_after=Duration.days(1)
                )
            ],
            # Presigned URLs are the authority; CORS only lets a browser use them from the console's origin.
            cors=[
                s3.CorsRule(
                    allowed_origins=["*"],
                    allowed_methods=[s3.HttpMethods(method) for method in topology.MEDIA_CORS_METHODS],
                    allowed_headers=["content-type"],
                    max_age=topology.MEDIA_CORS_MAX_AGE_SECONDS,
                )
            ],
            removal_policy=removal_policy,
        )
        # The API presigns uploads and downloads (a presigned URL carries its signer's rights) and checks uploads.
        self.bucket.grant_put(functions.api)
        self.bucket.grant_read(functions.api)
        # Workers read tenants' uploads, store received media and presign its URL.
        self.bucket.grant_read_write(workers.task_definition.task_role)
        for target in (functions.api, workers.container):
            target.add_environment(ENV_BUCKET, self.bucket.bucket_name)
            target.add_environment(ENV_RETENTION, str(retention_days))
