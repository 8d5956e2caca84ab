"""Delivery benchmark: events through LocalStack SQS and the deliver handler to a local receiver.

Phases, each on fresh queues:
1. baseline: plain httpx POSTs (signed, so the receiver does the same work) at the same concurrency as the
   deliver workers, to a healthy receiver; no queue, no Redis.
2. healthy: N events through SQS -> deliver -> healthy receiver. Deliveries/s vs the baseline.
3. faulty: N events; the receiver answers 500 to 30 % of requests and stalls past the (short) timeout on 5 %.
   Compressed retry schedule. Must end with 100 % delivered, 0 lost, 0 in the DLQ; duplicates counted.
4. outage: the receiver is down for `--outage-seconds`, then back; every event must be delivered after it returns.

The deliver side runs like Lambda: `--workers` processes (containers), each with `--threads` concurrent
invocations fed by wagw_local.sqs_runner (batches of 10, records of a batch delivered concurrently).
The receiver is a separate process (a small asyncio HTTP/1.1 server) verifying every signature with the
`standardwebhooks` package and counting accepted (2xx) webhook-ids.

Run: .venv/bin/python bench/delivery.py            (full: 10,000 events, 2-minute outage)
     .venv/bin/python bench/delivery.py --quick    (1,000 events, 20 s outage)

The run's figures, with per-second counts for every queue phase (deliveries the receiver answered 2xx, and
the requests that failed as the deliver workers saw them: 500 answers, timeouts from stalls, refused
connections) and the outage window, go to docs/bench-data/delivery.json (`--data-dir`), which
bench/plots.py draws as docs/img/deliveries-under-failure.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx

from bench.common import LoadSampler, add_data_dir_argument, write_data
from shared import aws
from shared.delivery.queue import DeliveryMessage, send_batch
from shared.settings import get_settings
from shared.signing import generate_secret, sign
from wagw_local import bootstrap, services
from wagw_local.services import REPO_ROOT

ENDPOINTS = 10
WORKSPACE = "ws_bench"
SCHEDULE = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]  # 16 attempts; 0.35 ** 16 ~ 5e-8
TIMEOUT_SECONDS = 2.0
STALL_SECONDS = 2.5


# Receiver (its own process) ---------------------------------------------------------------------------
def receiver_main(port: int, secret: str, fail_rate: float, stall_rate: float, seed: int) -> None:
    asyncio.run(_receiver(port, secret, fail_rate, stall_rate, seed))


async def _receiver(port: int, secret: str, fail_rate: float, stall_rate: float, seed: int) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    webhook = Webhook(secret)
    rng = random.Random(seed)
    accepted: list[str] = []
    accepted_at: list[float] = []  # when each 2xx was answered (for the per-second series)
    state = {"requests": 0, "bad_signatures": 0, "first": 0.0, "last": 0.0}
    statuses: Counter[int] = Counter()

    def reply(status: int, body: bytes = b"ok") -> bytes:
        return b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method = head[0].split(" ", 1)[0]
                headers = {}
                for line in head[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    stats = {**state, "accepted": accepted, "statuses": dict(statuses)}
                    if "times" in head[0]:
                        stats["accepted_at"] = accepted_at
                    writer.write(reply(200, json.dumps(stats).encode()))
                    await writer.drain()
                    continue
                state["requests"] += 1
                try:
                    webhook.verify(body, headers, json_parse=False)
                except WebhookVerificationError:
                    state["bad_signatures"] += 1
                    writer.write(reply(401))
                    await writer.drain()
                    continue
                roll = rng.random()
                if roll < stall_rate:
                    statuses[0] += 1
                    await asyncio.sleep(STALL_SECONDS)  # the sender has given up by now: never acknowledged
                    writer.close()
                    return
                if roll < stall_rate + fail_rate:
                    statuses[500] += 1
                    writer.write(reply(500, b"try later"))
                else:
                    statuses[200] += 1
                    now = time.time()
                    state["first"] = state["first"] or now
                    state["last"] = now
                    accepted.append(headers["webhook-id"])
                    accepted_at.append(now)
                    writer.write(reply(200))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


def start_receiver(port: int, secret: str, fail_rate: float = 0.0, stall_rate: float = 0.0) -> SpawnProcess:
    process = mp.get_context("spawn").Process(
        target=receiver_main, args=(port, secret, fail_rate, stall_rate, port), daemon=True
    )
    process.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1, trust_env=False)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("receiver did not start")


def receiver_stats(port: int, times: bool = False) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/stats" + ("?times=1" if times else "")
    result: dict[str, Any] = httpx.get(url, timeout=30, trust_env=False).json()
    return result


# Deliver workers (each process = one Lambda container, each thread = one concurrent invocation) --------
def outcome_kind(status: int | None, error: str | None) -> str:
    """What one webhook POST came to, as the sender saw it."""
    if status is not None:
        return "2xx" if 200 <= status < 300 else "500" if status == 500 else str(status)
    if error == "timeout":
        return "timeout"
    if error and error.startswith("ConnectError"):
        return "refused"
    return "error"


class OutcomeRecorder:
    """Counts every POST of the deliver function per wall-clock second and outcome (bench instrumentation:
    wraps functions.deliver.client.post in this process) and writes them to `path` as JSON."""

    def __init__(self, path: str) -> None:
        from functions.deliver import client

        self.path = path
        self.counts: Counter[tuple[int, str]] = Counter()
        self.lock = threading.Lock()
        original = client.post

        async def post(url: str, body: bytes, headers: dict[str, str]) -> client.HttpResult:
            result = await original(url, body, headers)
            with self.lock:
                self.counts[(int(time.time()), outcome_kind(result.status, result.error))] += 1
            return result

        client.post = post

    def write(self) -> None:
        with self.lock:
            rows = [[second, kind, n] for (second, kind), n in sorted(self.counts.items())]
        Path(self.path).write_text(json.dumps(rows))


def worker_main(queue_url: str, threads: int, stop: MpEvent, outcomes_path: str) -> None:
    # Like the Lambda runtime: Powertools' async batch processor then keeps one event loop per thread, so the
    # httpx pool and the Redis client live across invocations, as they do in a warm Lambda container.
    os.environ["LAMBDA_TASK_ROOT"] = str(REPO_ROOT)
    # Powertools prints EMF every 100 values of a metric even when disabled; keep the report readable.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    from functions.deliver.handler import handler
    from wagw_local.sqs_runner import SqsPoller

    recorder = OutcomeRecorder(outcomes_path)
    poller = SqsPoller(handler, queue_url, concurrency=threads, wait_seconds=1, function_name="deliver")
    poller.start()
    stop.wait()
    recorder.write()  # once before stopping, in case the stop takes longer than the parent waits
    poller.stop()
    recorder.write()


@dataclass
class Workers:
    processes: list[SpawnProcess]
    stop: MpEvent
    outcome_paths: list[str]

    def close(self) -> None:
        self.stop.set()
        for process in self.processes:
            process.join(15)
            if process.is_alive():
                process.kill()

    def outcomes(self) -> Counter[tuple[int, str]]:
        """Every worker's POSTs by (second, outcome); call after close()."""
        total: Counter[tuple[int, str]] = Counter()
        for path in self.outcome_paths:
            try:
                rows = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                continue
            for second, kind, n in rows:
                total[(second, kind)] += n
            Path(path).unlink()
        return total


def start_workers(queue_url: str, workers: int, threads: int) -> Workers:
    context = mp.get_context("spawn")
    stop = context.Event()
    directory = tempfile.mkdtemp(prefix="wagw-delivery-")
    paths = [f"{directory}/outcomes-{i}.json" for i in range(workers)]
    processes = [
        context.Process(target=worker_main, args=(queue_url, threads, stop, path), daemon=True) for path in paths
    ]
    for process in processes:
        process.start()
    return Workers(processes, stop, paths)


SERIES_KINDS = {"refused": "refused", "500": "http_500", "timeout": "timeout"}


def per_second(
    started: float, accepted_at: list[float], outcomes: Counter[tuple[int, str]], returned_at: float | None
) -> dict[str, Any]:
    """Per-second counts from the phase start: deliveries the receiver answered 2xx, and failed requests by
    kind as the deliver workers saw them (500 answer, timeout = a stall, refused connection, other)."""
    length = int(max([*accepted_at, *(second + 1 for second, _ in outcomes), started]) - started) + 1
    series: dict[str, Any] = {"t_s": list(range(length)), "delivered_2xx": [0] * length}
    for name in [*SERIES_KINDS.values(), "other_failed"]:
        series[name] = [0] * length
    for stamp in accepted_at:
        series["delivered_2xx"][max(0, int(stamp - started))] += 1
    for (second, kind), n in outcomes.items():
        if kind == "2xx":
            continue
        series[SERIES_KINDS.get(kind, "other_failed")][max(0, min(length - 1, int(second - started)))] += n
    series["requests_sent_by_outcome"] = {
        kind: sum(n for (_, k), n in outcomes.items() if k == kind) for kind in sorted({k for _, k in outcomes})
    }
    series["outage_window_s"] = [0.0, round(returned_at - started, 2)] if returned_at else None
    return series


# Setup -----------------------------------------------------------------------------------------------
def configure(phase: str, redis_url: str, cooldown: float) -> tuple[str, str]:
    """Fresh queues for the phase; the settings the workers inherit through the environment."""
    os.environ.update(
        {
            "WAGW_REDIS_URL": redis_url,
            "WAGW_DELIVERIES_QUEUE_NAME": f"bench-deliveries-{phase}",
            "WAGW_DELIVERIES_DLQ_NAME": f"bench-deliveries-dlq-{phase}",
            "WAGW_DELIVERY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "WAGW_RETRY_SCHEDULE_SECONDS": json.dumps(SCHEDULE),
            "WAGW_RETRY_JITTER": "0.2",
            "WAGW_BREAKER_COOLDOWN_SECONDS": str(cooldown),
        }
    )
    os.environ.pop("WAGW_DELIVERIES_QUEUE_URL", None)
    os.environ.pop("WAGW_DELIVERIES_DLQ_URL", None)
    get_settings.cache_clear()
    aws.reset_clients()
    queue_url, dlq_url = bootstrap.create_queues()
    os.environ["WAGW_DELIVERIES_QUEUE_URL"] = queue_url
    os.environ["WAGW_DELIVERIES_DLQ_URL"] = dlq_url
    get_settings.cache_clear()
    return queue_url, dlq_url


async def seed_endpoints(redis_url: str, port: int, secret: str) -> None:
    from redis.asyncio import Redis

    from shared.store.endpoints import put_endpoint
    from shared.store.records import EndpointRecord, EndpointSecret

    redis = Redis.from_url(redis_url, decode_responses=True)
    await redis.flushdb()
    for i in range(ENDPOINTS):
        await put_endpoint(
            redis,
            EndpointRecord(
                id=f"ep_b{i}",
                workspace_id=WORKSPACE,
                url=f"http://127.0.0.1:{port}/hooks/{i}",
                secrets=[EndpointSecret(secret=secret)],
            ),
        )
    await redis.aclose()


def make_messages(phase: str, count: int) -> list[DeliveryMessage]:
    return [
        DeliveryMessage(
            delivery_id=f"dlv_{phase}_{i:06d}",
            workspace_id=WORKSPACE,
            endpoint_id=f"ep_b{i % ENDPOINTS}",
            event={
                "id": f"evt_{phase}_{i:06d}",
                "type": "message.received",
                "workspace_id": WORKSPACE,
                "session_id": "ses_bench",
                "occurred_at": "2026-11-27T10:00:00Z",
                "data": {"message_id": f"wamid_{i}", "chat_id": "628@c.us", "from": "628@c.us", "body": "hello " * 20},
            },
        )
        for i in range(count)
    ]


def enqueue(queue_url: str, messages: list[DeliveryMessage]) -> float:
    started = time.perf_counter()
    chunks = [messages[i : i + 10] for i in range(0, len(messages), 10)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda chunk: send_batch(queue_url, chunk), chunks))
    return time.perf_counter() - started


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LOCALSTACK_PID: int | None = None


def queue_depth(url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = aws.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


async def redis_leftovers(redis_url: str) -> dict[str, int]:
    from redis.asyncio import Redis

    from shared import redis_keys as keys

    redis = Redis.from_url(redis_url, decode_responses=True)
    result = {
        "retry_due": int(await redis.zcard(keys.retry_schedule())),
        "retry_inflight": int(await redis.zcard(keys.retry_inflight())),
        "dead_letter_records": int(await redis.zcard(keys.workspace_dead_letters(WORKSPACE))),
    }
    await redis.aclose()
    return result


def wait_delivered(port: int, expected: int, limit_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_seconds
    while True:
        stats = receiver_stats(port)
        if len(set(stats["accepted"])) >= expected or time.monotonic() > deadline:
            return stats
        time.sleep(1)


# Phases ----------------------------------------------------------------------------------------------
async def baseline(port: int, secret: str, count: int, concurrency: int, processes: int) -> float:
    """Plain signed httpx POSTs, `concurrency` in flight over `processes` processes; returns requests/s."""
    context = mp.get_context("spawn")
    per = count // processes
    with context.Pool(processes) as pool:
        started = time.perf_counter()
        pool.starmap(baseline_main, [(port, secret, per, concurrency // processes, p) for p in range(processes)])
        elapsed = time.perf_counter() - started
    return per * processes / elapsed


def baseline_main(port: int, secret: str, count: int, concurrency: int, index: int) -> None:
    asyncio.run(_baseline(port, secret, count, concurrency, index))


async def _baseline(port: int, secret: str, count: int, concurrency: int, index: int) -> None:
    messages = make_messages(f"base{index}", count)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10, trust_env=False) as client:
        queue: asyncio.Queue[DeliveryMessage] = asyncio.Queue()
        for message in messages:
            queue.put_nowait(message)

        async def worker() -> None:
            while not queue.empty():
                message = queue.get_nowait()
                body = json.dumps(message.event, separators=(",", ":")).encode()
                headers = sign([secret], message.event_id, body).as_dict() | {"content-type": "application/json"}
                response = await client.post(f"http://127.0.0.1:{port}/hooks/0", content=body, headers=headers)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_phase(
    name: str,
    *,
    redis_url: str,
    count: int,
    workers: int,
    threads: int,
    fail_rate: float = 0.0,
    stall_rate: float = 0.0,
    outage_seconds: float = 0.0,
    cooldown: float = 5.0,
    limit_seconds: float = 900,
) -> dict[str, Any]:
    secret = generate_secret()
    port = services.free_port()
    queue_url, dlq_url = configure(name, redis_url, cooldown)
    asyncio.run(seed_endpoints(redis_url, port, secret))
    messages = make_messages(name, count)
    receiver = None if outage_seconds else start_receiver(port, secret, fail_rate, stall_rate)
    enqueue_seconds = enqueue(queue_url, messages)
    localstack_cpu = cpu_seconds(LOCALSTACK_PID)
    pool = start_workers(queue_url, workers, threads)
    started = time.time()
    returned_at = None
    try:
        if outage_seconds:
            time.sleep(outage_seconds)
            receiver = start_receiver(port, secret)
            returned_at = time.time()
        stats = wait_delivered(port, count, limit_seconds)
        finished = time.time()
        time.sleep(2)  # let the last acknowledgements land before counting what is left
        stats = receiver_stats(port, times=True)
        cpu = {
            "deliver_workers": sum(cpu_seconds(p.pid) for p in pool.processes),
            "localstack": cpu_seconds(LOCALSTACK_PID) - localstack_cpu,
            "receiver": cpu_seconds(receiver.pid if receiver else None),
        }
    finally:
        pool.close()
        if receiver is not None:
            receiver.kill()
    accepted = stats["accepted"]
    unique = len(set(accepted))
    expected_ids = {m.event_id for m in messages}
    active = stats["last"] - stats["first"] if stats["last"] > stats["first"] else 0.0
    leftovers = asyncio.run(redis_leftovers(redis_url))
    return {
        "phase": name,
        "events": count,
        "enqueue_seconds": round(enqueue_seconds, 1),
        "delivered_unique": unique,
        "delivered_pct": round(100 * unique / count, 3),
        "lost": len(expected_ids - set(accepted)),
        "duplicates": len(accepted) - unique,
        "duplicate_pct": round(100 * (len(accepted) - unique) / count, 3),
        "requests": stats["requests"],
        "statuses": stats["statuses"],
        "bad_signatures": stats["bad_signatures"],
        "deliveries_per_s": round(unique / active, 1) if active else None,
        "seconds_to_all_delivered": round(finished - started, 1),
        "seconds_after_return": round(finished - returned_at, 1) if returned_at else None,
        "cpu_ms_per_delivery": {k: round(1000 * v / max(1, unique), 2) for k, v in cpu.items()},
        "dlq_messages": queue_depth(dlq_url),
        "queue_left": queue_depth(queue_url),
        **leftovers,
        "series": per_second(started, stats["accepted_at"], pool.outcomes(), returned_at),
    }


def printable(result: dict[str, Any]) -> str:
    """A phase's result as the one JSON line printed for it (the per-second series go to the data file)."""
    return json.dumps({k: v for k, v in result.items() if k != "series"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--outage-events", type=int, default=2_000)
    parser.add_argument("--outage-seconds", type=float, default=120)
    parser.add_argument("--workers", type=int, default=2, help="deliver processes (Lambda containers)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent invocations per process")
    parser.add_argument("--quick", action="store_true", help="1,000 events, 300 in a 20 s outage")
    parser.add_argument("--phases", default="baseline,healthy,faulty,outage")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    load = LoadSampler().start()
    if args.quick:
        args.events, args.outage_events, args.outage_seconds = 1_000, 300, 20
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ["WAGW_ENV"] = "dev"
    os.environ["WAGW_ALLOW_LOCAL_WEBHOOKS"] = "true"  # the receivers listen on 127.0.0.1
    redis_server = services.start_redis()
    localstack = services.start_localstack()
    global LOCALSTACK_PID
    LOCALSTACK_PID = localstack.process.pid
    os.environ.update(services.aws_test_environment(localstack.url))
    concurrency = args.workers * args.threads * 10
    phases = args.phases.split(",")
    results: list[dict[str, Any]] = []
    try:
        common = {"redis_url": redis_server.url, "workers": args.workers, "threads": args.threads}
        if "baseline" in phases:
            secret = generate_secret()
            port = services.free_port()
            receiver = start_receiver(port, secret)
            try:
                rate = asyncio.run(baseline(port, secret, args.events, concurrency, args.workers))
            finally:
                receiver.kill()
            results.append({"phase": "baseline", "events": args.events, "requests_per_s": round(rate, 1)})
            print(printable(results[-1]), flush=True)
        if "healthy" in phases:
            results.append(run_phase("healthy", count=args.events, **common))
            print(printable(results[-1]), flush=True)
        if "faulty" in phases:
            results.append(run_phase("faulty", count=args.events, fail_rate=0.30, stall_rate=0.05, **common))
            print(printable(results[-1]), flush=True)
        if "outage" in phases:
            results.append(
                run_phase("outage", count=args.outage_events, outage_seconds=args.outage_seconds, cooldown=10, **common)
            )
            print(printable(results[-1]), flush=True)
    finally:
        localstack.stop()
        redis_server.stop()
        load.stop()
    checks = report(results, concurrency)
    print(load.summary())
    write_data(
        args.data_dir,
        "delivery",
        {
            "bench": "delivery",
            "run": load.run_info(),
            "settings": {
                "workers": args.workers,
                "threads": args.threads,
                "concurrency": concurrency,
                "endpoints": ENDPOINTS,
                "timeout_s": TIMEOUT_SECONDS,
                "stall_s": STALL_SECONDS,
                "retry_schedule_s": SCHEDULE,
                "outage_seconds": args.outage_seconds,
            },
            "phases": results,
            "checks": [{"check": label, "ok": ok} for label, ok in checks],
        },
    )
    return 0 if all(ok for _, ok in checks) else 1


def report(results: list[dict[str, Any]], concurrency: int) -> list[tuple[str, bool]]:
    by = {r["phase"]: r for r in results}
    checks: list[tuple[str, bool]] = []
    print(f"\nconcurrency: {concurrency} requests in flight at most")
    if "baseline" in by and "healthy" in by:
        ratio = (by["healthy"]["deliveries_per_s"] or 0) / by["baseline"]["requests_per_s"]
        print(
            f"healthy: {by['healthy']['deliveries_per_s']} deliveries/s; baseline {by['baseline']['requests_per_s']}"
            f" POSTs/s; ratio {ratio:.2f}"
        )
        checks += [
            ("healthy >= 0.7 x baseline", ratio >= 0.7),
            ("healthy >= 500 deliveries/s", (by["healthy"]["deliveries_per_s"] or 0) >= 500),
        ]
    for name in ("healthy", "faulty", "outage"):
        if name in by:
            r = by[name]
            checks += [
                (f"{name}: 100 % delivered", r["delivered_unique"] == r["events"]),
                (f"{name}: 0 lost", r["lost"] == 0),
                (f"{name}: 0 in DLQ", r["dlq_messages"] == 0 and r["dead_letter_records"] == 0),
                (f"{name}: duplicates < 1 %", r["duplicate_pct"] < 1),
                (f"{name}: nothing left queued", r["queue_left"] == 0 and r["retry_due"] == 0),
            ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return checks


if __name__ == "__main__":
    sys.exit(main())
