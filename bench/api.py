"""API benchmark: POST /v1/sessions/{id}/messages from 200 concurrent clients against the app under uvicorn
with real Redis, and in the same run the same load against a bare FastAPI endpoint that does nothing.

Each send is the real path: API-key lookup, session read, one Lua step (idempotency check, per-session
token bucket, message record, command on the session's stream). Every request carries a new
client_message_id, so each one creates a message. The send limit is raised so the bucket is charged but
never refuses (the 429 path is covered by tests).

Run: .venv/bin/python bench/api.py [--seconds 15] [--clients 200] [--sessions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Response
from redis.asyncio import Redis

from shared.local import services
from shared.local.services import REPO_ROOT, free_port

# The baseline: the same route shape, doing nothing (uvicorn target `bench.api:baseline_app`).
baseline_app = FastAPI()


@baseline_app.post("/v1/sessions/{session_id}/messages", status_code=202)
async def baseline_send(session_id: str) -> Response:
    return Response(status_code=202)


@dataclass
class Seeded:
    key: str
    session_ids: list[str]


async def seed(redis_url: str, sessions_count: int) -> Seeded:
    os.environ["WAGW_REDIS_URL"] = redis_url
    from functions.api.logic import workspaces
    from shared.redis_client import close_redis
    from shared.store import sessions
    from shared.store.records import SessionRecord

    workspace = await workspaces.create_workspace("bench")
    _, key = await workspaces.create_key(workspace.id, "bench", ["send"])
    redis = Redis.from_url(redis_url, decode_responses=True)
    ids = [f"ses_bench_{i:04d}" for i in range(sessions_count)]
    for session_id in ids:
        await sessions.create_session(redis, SessionRecord(id=session_id, workspace_id=workspace.id, name="bench"))
    await redis.aclose()
    await close_redis()
    return Seeded(key, ids)


@contextmanager
def serve(target: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/openapi.json", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self, name: str) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p99 = statistics.quantiles(self.latencies, n=100)[98] * 1000
        return (
            f"{name:>9}: {self.rate:8,.0f} requests/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
            f"   ({self.requests} requests)"
        )


async def load(url: str, seeded: Seeded, clients: int, seconds: float, warmup: float) -> Result:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {seeded.key}"}
    latencies: list[float] = []
    counting = False
    count = 0
    stop = False

    async def client(index: int, http: httpx.AsyncClient) -> None:
        nonlocal count
        session_id = seeded.session_ids[index % len(seeded.session_ids)]
        sequence = 0
        while not stop:
            sequence += 1
            body = {
                "to": "6281180164100",
                "text": "hello from the benchmark",
                "client_message_id": f"c{index}-{sequence}",
            }
            started = time.perf_counter()
            response = await http.post(f"{url}/v1/sessions/{session_id}/messages", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            if counting:
                latencies.append(elapsed)
                count += 1

    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        tasks = [asyncio.create_task(client(i, http)) for i in range(clients)]
        await asyncio.sleep(warmup)
        counting = True
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        counting = False
        elapsed = time.perf_counter() - started
        stop = True
        await asyncio.gather(*tasks)
    return Result(count, elapsed, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    redis = services.start_redis()
    # redis-py's asyncio pool refuses (rather than waits) beyond 100 connections; one uvicorn process
    # serving 200 concurrent requests needs more (a Lambda instance serves one request at a time).
    redis_url = f"{redis.url}?max_connections={4 * args.clients}"
    env = {
        **os.environ,
        "WAGW_REDIS_URL": redis_url,
        "WAGW_API_SEND_LIMIT_PER_MINUTE": "100000000",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    try:
        seeded = asyncio.run(seed(redis_url, args.sessions))
        results: dict[str, Result] = {}
        for name, target in (("baseline", "bench.api:baseline_app"), ("api", "functions.api.app:app")):
            with serve(target, env) as url:
                results[name] = asyncio.run(load(url, seeded, args.clients, args.seconds, args.warmup))
            print(results[name].line(name), flush=True)
        stored = asyncio.run(count_messages(redis.url, seeded))
        ratio = results["api"].rate / results["baseline"].rate
        print(f"    ratio: {ratio:.2f} of the bare endpoint (target >= 0.5); messages stored during the run: {stored}")
        print(f"   config: {args.clients} clients, {args.sessions} sessions, {args.seconds:.0f} s measured after "
              f"{args.warmup:.0f} s warm-up, one uvicorn process each, Redis {redis.url}")  # fmt: skip
    finally:
        redis.stop()


async def count_messages(redis_url: str, seeded: Seeded) -> int:
    from shared import redis_keys as keys

    redis = Redis.from_url(redis_url, decode_responses=True)
    async with redis.pipeline(transaction=False) as pipe:
        for session_id in seeded.session_ids:
            pipe.zcard(keys.session_messages(session_id))
        counts = await pipe.execute()
    await redis.aclose()
    return sum(int(c) for c in counts)


if __name__ == "__main__":
    main()
