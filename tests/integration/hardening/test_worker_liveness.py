"""A worker's liveness (`/healthz`, the ECS health check) is its process and its browser, never Redis: a slow Redis
failover must not get every worker replaced. Readiness (`/readyz`) is where Redis trouble shows.

A real worker with its own shared Chromium (headless shell) and its own redis-server, which the test stops."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from session_workers.browser import SharedBrowserHost
from session_workers.metrics import descendants, process_name
from session_workers.worker import Worker
from shared.settings import get_settings
from tests.conftest import refresh_settings
from wagw_local import services

pytestmark = pytest.mark.browser


@pytest.fixture
def own_redis(env: pytest.MonkeyPatch) -> Iterator[services.ServiceProcess]:
    server = services.start_redis()
    env.setenv("WAGW_REDIS_URL", server.url)
    env.setenv("WAGW_AUTH_STRATEGY", "context")
    env.setenv("WAGW_LEASE_TTL_MS", "1500")
    env.setenv("WAGW_HEARTBEAT_INTERVAL_MS", "300")
    refresh_settings()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def worker(own_redis: services.ServiceProcess) -> AsyncIterator[Worker]:
    host = SharedBrowserHost(get_settings())
    started = Worker(get_settings(), host=host, health_port=0)
    await started.start()
    try:
        yield started
    finally:
        started.kill()
        await started.close_after_kill()
        await host.close()


def browser_processes() -> list[int]:
    """The Chromium processes this test process launched (through its Playwright driver)."""
    return [pid for pid in descendants(os.getpid()) if "chrom" in process_name(pid)]


async def get(worker: Worker, path: str) -> httpx.Response:
    assert worker.health is not None
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"http://127.0.0.1:{worker.health.port}{path}")


async def test_redis_gone_for_long_leaves_the_worker_alive_but_not_ready(
    worker: Worker, own_redis: services.ServiceProcess
) -> None:
    # Given a running worker, live and ready
    assert (await get(worker, "/healthz")).status_code == 200
    assert (await get(worker, "/readyz")).status_code == 200
    # When its Redis goes away (a failover), and stays away for ten minutes
    own_redis.stop()
    deadline = time.monotonic() + 15
    while (await get(worker, "/readyz")).status_code == 200:
        assert time.monotonic() < deadline, "readiness never noticed Redis was gone"
        await asyncio.sleep(0.2)
    worker.heartbeat_ok_at -= 600  # the last heartbeat that reached Redis, as it would be ten minutes on
    # Then it is not ready, but alive: ECS does not replace it
    assert (await get(worker, "/readyz")).status_code == 503
    live = await get(worker, "/healthz")
    assert live.status_code == 200, live.text


async def test_a_browser_that_stops_answering_fails_liveness(worker: Worker) -> None:
    # Given a live worker, and its browser hung (every Chromium process stopped)
    hung = browser_processes()
    assert hung, "no Chromium process found"
    for pid in hung:
        os.kill(pid, signal.SIGSTOP)
    try:
        # When ECS asks whether it is alive
        live = await get(worker, "/healthz")
    finally:
        for pid in hung:
            os.kill(pid, signal.SIGCONT)
    # Then it is not (three such answers replace the task), and once the browser answers again it is
    assert live.status_code == 503 and "browser" in live.text
    assert (await get(worker, "/healthz")).status_code == 200
