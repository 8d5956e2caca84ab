"""Session worker fixtures: the simulator, a signature-checking ingest stub, fast lease timings, helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from redis.asyncio import Redis

from session_workers.browser import SharedBrowserHost
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import aws, topology
from shared.settings import get_settings
from shared.store.records import SessionRecord
from shared.store.sessions import create_session
from tests.conftest import own_media_bucket

FAST = {
    "WAGW_LEASE_TTL_MS": "1500",
    "WAGW_HEARTBEAT_INTERVAL_MS": "300",
    "WAGW_LEASE_SAFETY_MARGIN_MS": "700",  # wide: the shared 2 cores can stall the event loop
    "WAGW_CLAIM_INTERVAL_MS": "100",
    "WAGW_QR_REFRESH_LIMIT": "50",
    "WAGW_OUTBOX_BACKOFF_MAX_SECONDS": "2",
    "WAGW_STOP_TIMEOUT_SECONDS": "10",
    "WAGW_SEND_READY_TIMEOUT_SECONDS": "20",
    "WAGW_SEND_GAP_MS": "0",  # no anti-ban pacing, unless a test is about it
    "WAGW_SEND_JITTER_MS": "0",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(qr_interval_ms=1500).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stub() -> Iterator[IngestStub]:
    server = IngestStub().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker_env(redis: Redis, env: pytest.MonkeyPatch, sim: SimulatorServer, stub: IngestStub) -> pytest.MonkeyPatch:
    """Settings for in-process workers: the simulator, the stub, fast leases."""
    for name, value in FAST.items():
        env.setenv(name, value)
    env.setenv("WAGW_WHATSAPP_URL", sim.url)
    env.setenv("WAGW_INGEST_URL", stub.url)
    get_settings.cache_clear()
    return env


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """A plain Chromium (Debian's headless shell) for tests that drive the simulator page themselves."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=get_settings().chromium_path)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def media_bucket(aws_endpoint: str, worker_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A media bucket of the test's own on LocalStack (with the CORS rule the local system puts on it)."""
    with own_media_bucket(worker_env, "wagw-media-test") as name:
        aws.s3().put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": topology.media_cors_rules(["*"])})
        yield name


@pytest.fixture(scope="module")
async def context_host() -> AsyncIterator[SharedBrowserHost]:
    """One shared browser for a module's `context`-strategy workers (opening one costs seconds)."""
    shared = SharedBrowserHost(get_settings().model_copy(update={"auth_strategy": "context"}))
    await shared.start()
    try:
        yield shared
    finally:
        await shared.close()


async def serve_origin(context: BrowserContext, origin: str) -> Page:
    """A blank page of `origin` (routed, nothing fetched) in `context`: somewhere to write and read its storage."""

    async def app(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>app</title>")

    await context.route(f"{origin}/**", app)
    page = await context.new_page()
    await page.goto(f"{origin}/app")
    return page


async def start_context_worker(
    env: pytest.MonkeyPatch, host: SharedBrowserHost, workers: list[Worker], **settings: str
) -> Worker:
    """A `context`-strategy worker on the module's browser, with `WAGW_*` settings of the test's own."""
    env.setenv("WAGW_AUTH_STRATEGY", "context")
    for name, value in settings.items():
        env.setenv(name, value)
    get_settings.cache_clear()
    started = Worker(get_settings(), host=host, health_port=None)
    workers.append(started)
    await started.start()
    return started


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    """Workers a test starts; stopped (or cleaned up after a kill) at the end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.started:
            worker.kill()
        if hasattr(worker, "redis"):
            await worker.close_after_kill()


async def new_session(redis: Redis, session_id: str, workspace_id: str = "ws_test") -> str:
    await create_session(redis, SessionRecord(id=session_id, workspace_id=workspace_id))
    return session_id


async def eventually(check: Callable[[], Any], within: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def control(sim: SimulatorServer, path: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(sim.url + f"control/{path}", json=body)
        response.raise_for_status()
        return dict(response.json())


async def sim_state(sim: SimulatorServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        return dict((await http.get(sim.url + "control/state")).json())


async def scan_latest_qr(stub: IngestStub, sim: SimulatorServer, session_id: str, phone: str) -> None:
    """Scan the newest QR the session showed, as the phone would (again if it rotated meanwhile)."""
    for _ in range(5):
        qrs = await stub.wait_for(lambda: stub.select("session.qr", session_id), 20, f"a QR for {session_id}")
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(sim.url + "control/scan", json={"qr": qrs[-1]["data"]["qr"], "phone": phone})
        if response.status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"could not scan a QR of {session_id}")
