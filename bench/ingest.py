"""Ingest benchmark: signed batches through the HTTP endpoint into LocalStack SQS, against a baseline
endpoint that only parses the JSON and sends the same SQS batches, in the same run.

Run: .venv/bin/python bench/ingest.py [--seconds 20] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from bench.common import serve
from shared import aws
from shared.ids import new_event_id
from shared.settings import DEV_PRODUCER_SECRET, get_settings
from shared.signing import sign
from shared.store import endpoints, sessions, workspaces
from shared.store.records import EndpointRecord, EndpointSecret, SessionRecord, WorkspaceRecord
from wagw_local import bootstrap, services

WORKSPACES = 20
BATCH = 100


def batch_body(workspace_index: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "id": new_event_id(),
            "type": "message.received",
            "workspace_id": f"ws_{workspace_index}",
            "session_id": f"ses_{workspace_index}",
            "occurred_at": now,
            "data": {"message_id": f"wamid_{i}", "chat_id": "628@c.us", "from": "628@c.us", "body": "hello " * 10},
        }
        for i in range(BATCH)
    ]
    return json.dumps({"events": events}).encode()


async def seed(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    for i in range(WORKSPACES):
        await workspaces.create_workspace(redis, WorkspaceRecord(id=f"ws_{i}", name=f"bench {i}"))
        await sessions.create_session(redis, SessionRecord(id=f"ses_{i}", workspace_id=f"ws_{i}"))
        await endpoints.put_endpoint(
            redis,
            EndpointRecord(
                id=f"ep_{i}",
                workspace_id=f"ws_{i}",
                url="https://example.com/hook",
                secrets=[EndpointSecret(secret=DEV_PRODUCER_SECRET)],
            ),
        )
    await redis.aclose()


async def load(url: str, seconds: float, clients: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    events = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal events
        async with httpx.AsyncClient(timeout=30) as http:
            while time.perf_counter() < deadline:
                body = batch_body(index % WORKSPACES)
                headers = sign([DEV_PRODUCER_SECRET], "bench", body).as_dict()
                started = time.perf_counter()
                response = await http.post(url, content=body, headers={**headers, "content-type": "application/json"})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                events += BATCH

    await asyncio.gather(*(client(i) for i in range(clients)))
    return events, latencies


def report(name: str, events: int, latencies: list[float], seconds: float) -> float:
    rate = events / seconds
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    print(f"{name:>9}: {rate:8,.0f} events/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   ({len(latencies)} batches)")
    return rate


def queued(queue_url: str) -> int:
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    redis, localstack = services.start_redis(), services.start_localstack()
    env = {
        **os.environ,
        **services.aws_test_environment(localstack.url),
        "WAGW_REDIS_URL": redis.url,
        "WAGW_THROTTLE_LIMITS": json.dumps({"default": {"per_minute": 10_000_000, "burst": 10_000_000}}),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        queue_url, _ = bootstrap.create_queues()
        asyncio.run(seed(redis.url))
        rates = {}
        for name, target in (("baseline", "bench.baseline_ingest:app"), ("ingest", "functions.ingest.app:app")):
            aws.sqs().purge_queue(QueueUrl=queue_url)
            time.sleep(1)
            with serve(target, env) as (base_url, _):
                url = base_url + "/v1/events"
                asyncio.run(load(url, 2, args.clients))  # warm up
                aws.sqs().purge_queue(QueueUrl=queue_url)
                time.sleep(1)
                events, latencies = asyncio.run(load(url, args.seconds, args.clients))
                rates[name] = report(name, events, latencies, args.seconds)
                print(f"{'':>9}  {events} events posted, {queued(queue_url)} deliveries on the queue")
        ratio = rates["ingest"] / rates["baseline"]
        print(f"ratio ingest/baseline: {ratio:.2f} (target >= 0.7)")
        print(f"ingest: {rates['ingest']:,.0f} events/s (target >= 1,000)")
        print("RESULT:", "PASS" if ratio >= 0.7 and rates["ingest"] >= 1000 else "FAIL")
    finally:
        localstack.stop()
        redis.stop()


if __name__ == "__main__":
    main()
