"""API benchmark: POST /v1/sessions/{id}/messages from 200 concurrent clients against the app under uvicorn
with real Redis, and in the same run the same load against a bare FastAPI endpoint that does nothing.

Each send is the real path: API-key lookup, session read, one Lua step (idempotency check, per-session
token bucket, message record, command on the session's stream). Every request carries a new
client_message_id, so each one creates a message. The send limit is raised so the bucket is charged but
never refuses (the 429 path is covered by tests).

Run: .venv/bin/python bench/api.py [--seconds 10] [--rounds 3] [--clients 200] [--sessions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass

from fastapi import FastAPI, Response
from redis.asyncio import Redis

from bench.common import serve
from wagw_local import services

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to compare servers on a shared machine."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0  # CPU seconds the server process used while measured

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self, name: str) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p99 = statistics.quantiles(self.latencies, n=100)[98] * 1000
        return (
            f"{name:>9}: {self.rate:8,.0f} requests/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
            f"   server CPU {self.cpu_per_request_us:5.0f} us/request   ({self.requests} requests)"
        )

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu / max(1, self.requests) * 1e6


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection; returns (status, body)."""
    writer.write(request)
    await writer.drain()
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def load(url: str, pid: int, seeded: Seeded, clients: int, seconds: float, warmup: float) -> Result:
    """`clients` concurrent keep-alive connections, each sending one request after another. A plain asyncio
    HTTP/1.1 client: it costs far less CPU than the servers, so the figures are the servers'."""
    host, port = url.removeprefix("http://").split(":")
    run = uuid.uuid4().hex[:8]  # client message ids unique across runs: every request creates a message
    latencies: list[float] = []
    counting = False
    count = 0
    stop = False

    async def client(index: int) -> None:
        nonlocal count
        session_id = seeded.session_ids[index % len(seeded.session_ids)]
        reader, writer = await asyncio.open_connection(host, int(port))
        sequence = 0
        try:
            while not stop:
                sequence += 1
                body = (
                    '{"to":"6281180164100","text":"hello from the benchmark",'
                    f'"client_message_id":"{run}-{index}-{sequence}"}}'
                ).encode()
                request = (
                    f"POST /v1/sessions/{session_id}/messages HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {seeded.key}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                started = time.perf_counter()
                status, answer = await exchange(reader, writer, request)
                elapsed = time.perf_counter() - started
                if status != 202:
                    raise RuntimeError(f"{status}: {answer[:300]!r}")
                if counting:
                    latencies.append(elapsed)
                    count += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    counting = True
    started, cpu_before = time.perf_counter(), cpu_seconds(pid)
    await asyncio.sleep(seconds)
    counting = False
    elapsed, cpu_used = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    stop = True
    await asyncio.gather(*tasks)
    return Result(count, elapsed, latencies, cpu_used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per round and target")
    parser.add_argument("--rounds", type=int, default=3, help="alternating baseline/api rounds")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    redis = services.start_redis()
    # redis-py's asyncio pool refuses (rather than waits) beyond 100 connections; one uvicorn process
    # serving 200 concurrent requests may need more (a Lambda instance serves one request at a time).
    redis_url = f"{redis.url}?max_connections={4 * args.clients}"
    env = {
        **os.environ,
        "WAGW_REDIS_URL": redis_url,
        "WAGW_SEND_QUEUE_MAX": "100000",  # the API alone: nothing drains the send queues
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    targets = {"baseline": "bench.api:baseline_app", "api": "functions.api.app:app"}
    try:
        seeded = asyncio.run(seed(redis_url, args.sessions))
        # Both servers run side by side; rounds alternate so load from other processes on the machine
        # falls on both alike. Figures: all measured requests of a target pooled.
        with serve(targets["baseline"], env) as baseline, serve(targets["api"], env) as api:
            servers = {"baseline": baseline, "api": api}
            pooled = {name: Result(0, 0.0, []) for name in targets}
            ratios: list[float] = []
            for round_number in range(1, args.rounds + 1):
                rates = {}
                for name in targets:
                    url, pid = servers[name]
                    result = asyncio.run(load(url, pid, seeded, args.clients, args.seconds, args.warmup))
                    pooled[name] = Result(
                        pooled[name].requests + result.requests,
                        pooled[name].seconds + result.seconds,
                        pooled[name].latencies + result.latencies,
                        pooled[name].server_cpu + result.server_cpu,
                    )
                    rates[name] = result.rate
                    print(f"round {round_number} " + result.line(name), flush=True)
                ratios.append(rates["api"] / rates["baseline"])
        for name in targets:
            print(pooled[name].line(name), flush=True)
        stored = asyncio.run(count_messages(redis_url, seeded))
        ratio = pooled["api"].rate / pooled["baseline"].rate
        cpu_ratio = pooled["baseline"].cpu_per_request_us / pooled["api"].cpu_per_request_us
        print(
            f"    ratio: {ratio:.2f} of the bare endpoint's requests/s (target >= 0.5); per round: "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; by server CPU per request: {cpu_ratio:.2f}; "
            f"messages stored: {stored}"
        )
        print(
            f"   config: {args.clients} clients, {args.sessions} sessions, {args.rounds} rounds of "
            f"{args.seconds:.0f} s per target after {args.warmup:.0f} s warm-up each, one uvicorn process per target"
        )
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
