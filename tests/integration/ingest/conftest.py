"""A seeded tenant (workspace, session, webhook endpoint) and helpers to post signed batches to ingest."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from functions.ingest.app import create_app
from shared import aws
from shared.settings import DEV_PRODUCER_SECRET
from shared.signing import sign
from shared.store import endpoints, sessions, workspaces
from shared.store.records import EndpointRecord, EndpointSecret, SessionRecord, WorkspaceRecord
from tests.conftest import Queues


@dataclass(frozen=True)
class Tenant:
    workspace_id: str = "ws_demo"
    session_id: str = "ses_demo"
    endpoint_id: str = "ep_demo"


def signed(events: list[dict[str, Any]], secret: str = DEV_PRODUCER_SECRET, **kwargs: Any) -> dict[str, Any]:
    body = json.dumps({"events": events}).encode()
    headers = sign([secret], "batch_1", body, **kwargs).as_dict()
    return {"content": body, "headers": {**headers, "content-type": "application/json"}}


@pytest.fixture
async def tenant(redis: Redis) -> Tenant:
    seeded = Tenant()
    await workspaces.create_workspace(redis, WorkspaceRecord(id=seeded.workspace_id, name="Demo"))
    await sessions.create_session(redis, SessionRecord(id=seeded.session_id, workspace_id=seeded.workspace_id))
    await endpoints.put_endpoint(
        redis,
        EndpointRecord(
            id=seeded.endpoint_id,
            workspace_id=seeded.workspace_id,
            url="http://127.0.0.1:9/hook",
            secrets=[EndpointSecret(secret="whsec_dGVzdA==")],
        ),
    )
    return seeded


@pytest.fixture
async def client(queues: Queues, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(), client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue now (receives until empty), bodies parsed."""
    bodies: list[dict[str, Any]] = []
    while True:
        got = aws.sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            aws.sqs().delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
