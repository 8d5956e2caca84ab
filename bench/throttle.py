"""Throttle benchmark: decisions per second from one process, and exactness under 8 concurrent clients.

Run: .venv/bin/python bench/throttle.py [--exact-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time

from redis.asyncio import Redis

from shared import throttle
from shared.redis_client import make_client
from shared.settings import get_settings
from wagw_local import services

EXACT_LIMIT_PER_MINUTE = 600
EXACT_BURST = 50


async def decisions_per_second(redis_url: str, seconds: float, batch: int, concurrency: int) -> float:
    redis = make_client(redis_url)
    deadline = time.perf_counter() + seconds
    counter = 0

    async def client(index: int) -> None:
        nonlocal counter
        sequence = 0
        while time.perf_counter() < deadline:
            requests = [
                throttle.AdmissionRequest(f"evt_c{index}_{sequence}_{i}", f"ws_{i % 50}", "message")
                for i in range(batch)
            ]
            sequence += 1
            await throttle.admit(redis, requests)
            counter += batch

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return counter / elapsed


def _hammer(redis_url: str, seconds: float, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ["WAGW_REDIS_URL"] = redis_url
    os.environ["WAGW_THROTTLE_LIMITS"] = (
        f'{{"default": {{"per_minute": {EXACT_LIMIT_PER_MINUTE}, "burst": {EXACT_BURST}}}}}'
    )
    get_settings.cache_clear()

    async def server_seconds(redis: Redis) -> float:
        seconds, micros = await redis.time()
        return float(seconds) + micros / 1e6

    async def run() -> tuple[int, float, float]:
        redis = make_client(redis_url)
        first = await server_seconds(redis)
        admitted = 0
        deadline = time.perf_counter() + seconds
        sequence = 0
        while time.perf_counter() < deadline:
            requests = [
                throttle.AdmissionRequest(f"evt_{os.getpid()}_{sequence}_{i}", "ws_x", "default") for i in range(5)
            ]
            sequence += 1
            decisions = await throttle.admit(redis, requests)
            admitted += sum(d.admission is throttle.Admission.ACCEPTED for d in decisions)
        last = await server_seconds(redis)
        await redis.aclose()
        return admitted, first, last

    result.put(asyncio.run(run()))


def exactness(redis_url: str, seconds: float, clients: int = 8) -> tuple[int, int, float]:
    """Admitted events, and the most a bucket may admit over the span the clients really ran (server clock)."""
    result: multiprocessing.Queue[tuple[int, float, float]] = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_hammer, args=(redis_url, seconds, result)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    outcomes = [result.get() for _ in workers]
    for worker in workers:
        worker.join()
    admitted = sum(count for count, _, _ in outcomes)
    span = max(last for _, _, last in outcomes) - min(first for _, first, _ in outcomes)
    allowed = int(EXACT_LIMIT_PER_MINUTE * span / 60) + EXACT_BURST
    return admitted, allowed, span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--exact-seconds", type=float, default=60.0, help="length of the exactness run")
    args = parser.parse_args()
    redis = services.start_redis()
    try:
        os.environ["WAGW_REDIS_URL"] = redis.url
        get_settings.cache_clear()
        rate = asyncio.run(decisions_per_second(redis.url, args.seconds, batch=100, concurrency=8))
        print(f"throughput: {rate:,.0f} decisions/s from one process (target >= 20,000)")
        admitted, allowed, span = exactness(redis.url, args.exact_seconds)
        print(
            f"exactness: 8 clients over {span:.2f}s (server clock) admitted {admitted} "
            f"(limit {EXACT_LIMIT_PER_MINUTE}/min over the span + burst {EXACT_BURST} = {allowed}): "
            f"{'OK' if admitted <= allowed else 'OVER'}"
        )
        ok = rate >= 20_000 and admitted <= allowed
        print("RESULT:", "PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
