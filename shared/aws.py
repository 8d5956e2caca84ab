"""boto3 clients, created on first use. Endpoints come only from AWS_ENDPOINT_URL (LocalStack locally)."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from shared.settings import get_settings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=50)


# Creating a client costs ~0.1 s of CPU (botocore loads and parses the service model). lru_cache does not stop
# threads that miss at the same moment from each creating one: a worker restoring 8 sealed archives at once made
# 8 KMS clients in 8 threads (13 % of its CPU during a failover, py-spy). One creation at a time, then cached:
# every client, named or not, comes through here.
_creating = threading.Lock()


def client(service: str) -> Any:
    """The cached client for `service`."""
    with _creating:
        return _cached_client(service)


@lru_cache
def _cached_client(service: str) -> Any:
    return _client(service)


def _client(service: str) -> Any:
    return boto3.session.Session().client(service, region_name=get_settings().aws_region, config=_CONFIG)


def sqs() -> Any:
    return client("sqs")


def s3() -> Any:
    return client("s3")


def secrets_manager() -> Any:
    return client("secretsmanager")


@lru_cache
def queue_url(name: str) -> str:
    url: str = sqs().get_queue_url(QueueName=name)["QueueUrl"]
    return url


def queue_arn(url: str) -> str:
    arn: str = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def deliveries_queue_url() -> str:
    settings = get_settings()
    return settings.deliveries_queue_url or queue_url(settings.deliveries_queue_name)


def deliveries_dlq_url() -> str:
    settings = get_settings()
    return settings.deliveries_dlq_url or queue_url(settings.deliveries_dlq_name)


def reset_clients() -> None:
    """Forget cached clients and URLs (tests that switch endpoints or settings call this)."""
    for cached in (queue_url, _cached_client):
        cached.cache_clear()
