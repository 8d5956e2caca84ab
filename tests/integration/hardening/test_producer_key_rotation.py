"""The producer-key rotation of docs/deploy.md, walked against running ingest processes and the worker's poster.

One rule (shared/producer.py): a producer signs every batch once with each of its keys; ingest accepts a batch when
any signature matches any key it holds. Each ingest process reads the Secrets Manager secret (LocalStack) and keeps
what it read for 5 minutes, so ingest processes started at different steps hold different keys, as in AWS. Each
worker holds the keys ECS injected when its task started. At every step every worker posts through its outbox
poster to every ingest process that could still exist then, and nothing may be refused, dead-lettered or lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from redis.asyncio import Redis

from session_workers.outbox import poster_for
from shared import aws
from shared import redis_keys as keys
from shared.events import event_to_json, parse_event
from shared.ids import new_event_id
from shared.signing import generate_secret
from tests.conftest import Queues, refresh_settings
from tests.fixtures import load_event
from tests.integration.ingest.conftest import Tenant, drain
from wagw_local.services import REPO_ROOT, free_port

OLD, NEW = generate_secret(), generate_secret()
IngestStarter = Callable[[str], AbstractContextManager[str]]


@pytest.fixture
def producer_secret(aws_endpoint: str) -> Iterator[str]:
    """The producer keys secret as the stack creates it, holding the current key."""
    name = f"wagw-producer-keys-{uuid.uuid4().hex[:8]}"
    aws.secrets_manager().create_secret(Name=name, SecretString=json.dumps({"k1": OLD}))
    try:
        yield name
    finally:
        aws.secrets_manager().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def put_keys(secret: str, value: dict[str, str]) -> None:
    aws.secrets_manager().put_secret_value(SecretId=secret, SecretString=json.dumps(value))


@pytest.fixture
def ingest_started(producer_secret: str, queues: Queues, tenant: Tenant) -> Iterator[IngestStarter]:
    """Starts ingest processes (uvicorn) that read the producer keys from the secret; stops them all afterwards."""
    processes: list[subprocess.Popen[bytes]] = []

    @contextmanager
    def start(name: str) -> Iterator[str]:
        port = free_port()
        environment = {**os.environ, "WAGW_PRODUCER_KEYS_SECRET_NAME": producer_secret}
        command = [sys.executable, "-m", "uvicorn", "functions.ingest.app:app", "--port", str(port)]
        process = subprocess.Popen([*command, "--log-level", "warning"], env=environment, cwd=REPO_ROOT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}/v1/events"
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=0.5)
                break
            except httpx.HTTPError:
                assert process.poll() is None, f"ingest {name} exited"
                time.sleep(0.1)
        yield url

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


class Worker:
    """A session worker as far as signing goes: the keys its task was started with, and its outbox poster."""

    def __init__(self, name: str, task_keys: dict[str, str]) -> None:
        self.name = name
        self.task_keys = task_keys

    async def post(self, redis: Redis, env: pytest.MonkeyPatch, ingest_url: str, count: int = 3) -> list[str]:
        """Put `count` events in this worker's outbox and let its poster send them; return their ids."""
        env.setenv("WAGW_PRODUCER_KEYS", json.dumps(self.task_keys))
        env.delenv("WAGW_PRODUCER_KEYS_SECRET_NAME", raising=False)
        refresh_settings()
        ids = []
        for _ in range(count):
            raw = {**load_event("message_received"), "id": new_event_id()}
            raw["occurred_at"] = datetime.now(UTC).isoformat()
            await redis.xadd(keys.outbox(self.name), {"event": event_to_json(parse_event(raw))})
            ids.append(raw["id"])
        async with httpx.AsyncClient(timeout=15) as http:
            poster = poster_for(redis, self.name, http, ingest_url, batch=100, backoff_max=1.0)
            delay = await poster.drain_once()
        assert delay is None and await poster.depth() == 0, f"{self.name} -> {ingest_url}: batch not accepted"
        assert await redis.xlen(keys.outbox_dead(self.name)) == 0
        return ids


async def test_rotation_as_documented_never_refuses_a_batch_and_loses_nothing(
    ingest_started: IngestStarter,
    producer_secret: str,
    queues: Queues,
    redis: Redis,
    env: pytest.MonkeyPatch,
) -> None:
    posted: list[str] = []
    # Given the current key k1: an ingest process that has read it, and a worker started with it
    w1 = Worker("w1", {"k1": OLD})
    with ingest_started("a") as ingest_a:
        posted += await w1.post(redis, env, ingest_a)

        # Step 2: add the new key (order does not matter). Ingest processes pick it up within 5 minutes:
        # `a` still holds {k1}, `b` (started now) holds {k1, k2}; the running worker still signs with k1 only.
        put_keys(producer_secret, {"k1": OLD, "k2": NEW})
        with ingest_started("b") as ingest_b:
            for ingest in (ingest_a, ingest_b):
                posted += await w1.post(redis, env, ingest)

            # Step 3: restart the workers (force a new deployment): new tasks get {k1, k2} and sign with both,
            # while old tasks are still draining; both reach every ingest process.
            w2 = Worker("w2", {"k1": OLD, "k2": NEW})
            for worker in (w1, w2):
                for ingest in (ingest_a, ingest_b):
                    posted += await worker.post(redis, env, ingest)

            # Step 4, once the deployment has finished and 5 minutes have passed since step 2: remove the old key.
            # `c` (started now) holds {k2}; `b` may still hold {k1, k2}; a worker autoscaling starts now has {k2}.
            put_keys(producer_secret, {"k2": NEW})
            with ingest_started("c") as ingest_c:
                w3 = Worker("w3", {"k2": NEW})
                for worker in (w2, w3):
                    for ingest in (ingest_b, ingest_c):
                        posted += await worker.post(redis, env, ingest)

    # Then every event was accepted once and queued for the tenant's endpoint: nothing refused, nothing lost
    queued = [delivery["event"]["id"] for delivery in drain(queues.deliveries_url)]
    assert sorted(queued) == sorted(posted) and len(set(posted)) == len(posted) == 3 * 11
