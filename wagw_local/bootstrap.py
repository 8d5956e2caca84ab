"""Create the AWS resources the system needs in LocalStack, shaped as the CDK app shapes them."""

from __future__ import annotations

import json

from shared import aws, topology
from shared.settings import get_settings


def create_queues() -> tuple[str, str]:
    """Create the deliveries queue and its DLQ (idempotent); return their URLs."""
    settings = get_settings()
    client = aws.sqs()
    dlq_url = client.create_queue(
        QueueName=settings.deliveries_dlq_name,
        Attributes={"MessageRetentionPeriod": str(topology.DLQ_RETENTION_SECONDS)},
    )["QueueUrl"]
    dlq_arn = aws.queue_arn(dlq_url)
    queue_url = client.create_queue(
        QueueName=settings.deliveries_queue_name,
        Attributes={
            "VisibilityTimeout": str(topology.DELIVERIES_VISIBILITY_TIMEOUT_SECONDS),
            "MessageRetentionPeriod": str(topology.DELIVERIES_RETENTION_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": topology.DELIVERIES_MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    queue_arn = aws.queue_arn(queue_url)
    client.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]})},
    )
    return queue_url, dlq_url


def create_bucket() -> str:
    """The auth-archive bucket and the media bucket (as the CDK app makes them); returns the auth bucket's name."""
    settings = get_settings()
    client = aws.s3()
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    for name in (settings.auth_bucket, settings.media_bucket):
        if name not in existing:
            client.create_bucket(Bucket=name)
    # The console uploads to and previews from the media bucket (locally from whatever port the API got).
    cors = {"CORSRules": topology.media_cors_rules(["*"])}
    client.put_bucket_cors(Bucket=settings.media_bucket, CORSConfiguration=cors)
    return settings.auth_bucket


def bootstrap() -> None:
    create_queues()
    create_bucket()
