"""A KMS key on LocalStack for tests that seal auth archives (scheduled for deletion afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import aws


def create_key(description: str) -> str:
    arn: str = aws.client("kms").create_key(Description=description)["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture
def kms_key(aws_endpoint: str) -> Iterator[str]:
    aws.reset_clients()
    arn = create_key("wagw test: auth archives")
    try:
        yield arn
    finally:
        aws.client("kms").schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
