"""Shared fixtures: real Redis and LocalStack, started on free ports only when a test asks for them.

`REDIS_URL` and `AWS_ENDPOINT_URL`, when the caller sets them, are used instead of starting our own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from shared import aws
from shared.settings import get_settings
from wagw_local import bootstrap, services

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("WAGW_ENV", "dev")
os.environ.setdefault("WAGW_ALLOW_LOCAL_WEBHOOKS", "true")  # the tests' receivers listen on 127.0.0.1


def refresh_settings() -> None:
    """Drop cached settings and clients so the next use reads the environment afresh."""
    get_settings.cache_clear()
    aws.reset_clients()


@contextmanager
def own_media_bucket(env: pytest.MonkeyPatch, prefix: str) -> Iterator[str]:
    """A media bucket of the test's own on LocalStack, set as WAGW_MEDIA_BUCKET; emptied and removed after."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    env.setenv("WAGW_MEDIA_BUCKET", name)
    refresh_settings()
    aws.s3().create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for item in aws.s3().list_objects_v2(Bucket=name).get("Contents", []):
            aws.s3().delete_object(Bucket=name, Key=item["Key"])
        aws.s3().delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = services.start_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    given = os.environ.get("AWS_ENDPOINT_URL")
    if given:
        os.environ.update({k: v for k, v in services.aws_test_environment(given).items() if k not in os.environ})
        yield given
        return
    server = services.start_localstack()
    os.environ.update(services.aws_test_environment(server.url))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set WAGW_* variables for one test; settings and clients are re-read before and after."""
    refresh_settings()
    yield monkeypatch
    monkeypatch.undo()
    refresh_settings()


@pytest.fixture
def staging(env: pytest.MonkeyPatch) -> None:
    """A non-dev environment: https only, and webhook hosts must resolve to public addresses."""
    env.setenv("WAGW_ENV", "staging")
    env.setenv("WAGW_ADMIN_API_KEY", "staging-admin-key-for-tests")
    env.setenv("WAGW_PRODUCER_KEYS", '{"test": "whsec_c3RhZ2luZy10ZXN0LWtleS0xMjM0NTY3ODkwMTI="}')
    refresh_settings()


@pytest.fixture
async def redis(redis_url: str, env: pytest.MonkeyPatch) -> AsyncIterator[Redis]:
    """A clean Redis database for one test, and settings pointing at it."""
    env.setenv("WAGW_REDIS_URL", redis_url)
    refresh_settings()
    client = Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
        from shared.redis_client import close_redis

        await close_redis()


@dataclass(frozen=True)
class Queues:
    deliveries_url: str
    dlq_url: str


@pytest.fixture
def queues(aws_endpoint: str, env: pytest.MonkeyPatch) -> Iterator[Queues]:
    """A fresh deliveries queue and DLQ in LocalStack for one test, deleted afterwards."""
    suffix = uuid.uuid4().hex[:10]
    env.setenv("WAGW_DELIVERIES_QUEUE_NAME", f"wagw-deliveries-{suffix}")
    env.setenv("WAGW_DELIVERIES_DLQ_NAME", f"wagw-deliveries-dlq-{suffix}")
    refresh_settings()
    queue_url, dlq_url = bootstrap.create_queues()
    try:
        yield Queues(queue_url, dlq_url)
    finally:
        for url in (queue_url, dlq_url):
            aws.sqs().delete_queue(QueueUrl=url)
