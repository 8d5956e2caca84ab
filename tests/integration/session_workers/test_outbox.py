"""The outbox: signed batches to ingest, retries, throttling, orphaned outboxes; health endpoints. No browser."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from redis.asyncio import Redis

from session_workers.outbox import WOKEN_EMPTY_POLL_SECONDS, poster_for
from session_workers.ownership import Lease, Ownership
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.events import SessionStatus, SessionStatusData, SessionStatusEvent, event_to_json
from shared.settings import get_settings
from shared.signing import generate_secret
from shared.store.records import now_ms
from tests.integration.session_workers.conftest import eventually, new_session
from tests.integration.session_workers.fakes import DrivingLog, fake_factory


async def owned(redis: Redis, worker_id: str, sid: str) -> tuple[Ownership, Lease]:
    await new_session(redis, sid)
    ownership = Ownership(redis, worker_id, ttl_ms=60_000)
    lease = await ownership.claim(sid)
    assert lease is not None
    return ownership, lease


def status_event(sid: str, status: SessionStatus = SessionStatus.READY) -> SessionStatusEvent:
    return SessionStatusEvent(workspace_id="ws_test", session_id=sid, data=SessionStatusData(status=status))


async def test_events_survive_ingest_outages_and_throttling(
    redis: Redis, worker_env: pytest.MonkeyPatch, stub: IngestStub
) -> None:
    # Given five events in a worker's outbox
    ownership, lease = await owned(redis, "w-out", "sess_out")
    events = [status_event("sess_out") for _ in range(5)]
    for event in events:
        await ownership.emit(lease, event_to_json(event))
    # And ingest answers 503 twice, then 429 with Retry-After, and throttles one event type once
    stub.fail_next(2, 503)
    stub.fail_next(1, 429, retry_after=1)
    stub.throttle_type("session.status", times=2, retry_after=1)
    async with httpx.AsyncClient() as http:
        poster = poster_for(redis, "w-out", http, stub.url, 100, 2.0)
        # When the poster drains it
        drained = await poster.drain_all(asyncio.get_running_loop().time() + 30)
    # Then every event arrived exactly once, and the outbox is empty
    assert drained
    assert sorted(e["id"] for e in stub.select()) == sorted(e.id for e in events)
    assert max(stub.seen.values()) == 1
    assert stub.answers[503] == 2 and stub.answers[429] == 1
    assert poster.stats.throttled == 2
    assert await redis.xlen(keys.outbox("w-out")) == 0


async def test_nothing_is_deleted_while_ingest_refuses_our_signature(
    redis: Redis, worker_env: pytest.MonkeyPatch
) -> None:
    ownership, lease = await owned(redis, "w-badkey", "sess_badkey")
    await ownership.emit(lease, event_to_json(status_event("sess_badkey")))
    with IngestStub(keys={"other": generate_secret()}) as wrong_key:
        async with httpx.AsyncClient() as http:
            poster = poster_for(redis, "w-badkey", http, wrong_key.url, 100, 0.5)
            delay = await poster.drain_once()
        assert wrong_key.refused_signatures == 1
    assert delay is not None and delay > 0
    assert await redis.xlen(keys.outbox("w-badkey")) == 1
    assert await redis.xlen(keys.outbox_dead("w-badkey")) == 0


async def test_an_idle_woken_poster_reads_its_empty_stream_rarely_and_posts_a_new_event_at_once(
    redis: Redis, worker_env: pytest.MonkeyPatch, stub: IngestStub
) -> None:
    # Given a worker's poster running with its wake event over an empty outbox, its reads of the stream counted
    ownership, lease = await owned(redis, "w-idle", "sess_idle")
    wake, stop = asyncio.Event(), asyncio.Event()
    async with httpx.AsyncClient() as http:
        poster = poster_for(redis, "w-idle", http, stub.url, 100, 2.0)
        reads = 0
        drain_once = poster.drain_once

        async def counted() -> float | None:
            nonlocal reads
            reads += 1
            return await drain_once()

        poster.drain_once = counted  # type: ignore[method-assign]
        running = asyncio.create_task(poster.run(wake, stop=stop))
        # When nothing is written for 3 s
        await asyncio.sleep(3)
        idle_reads = reads
        # And then an event is written and the poster woken, as Session.emit does
        event = status_event("sess_idle")
        await ownership.emit(lease, event_to_json(event))
        wake.set()
        written_at = asyncio.get_running_loop().time()
        await eventually(lambda: len(stub.select(session_id="sess_idle")) == 1, what="event posted")
        posted_after = asyncio.get_running_loop().time() - written_at
        stop.set()
        wake.set()
        await running
    # Then the idle poster looked at its stream about once per backstop period (it was 15 times at 0.2 s)
    assert idle_reads <= 3 / WOKEN_EMPTY_POLL_SECONDS + 1
    # And the woken poster posted the event well before its backstop would have found it
    assert posted_after < WOKEN_EMPTY_POLL_SECONDS / 2
    assert [e["id"] for e in stub.select()] == [event.id]


async def test_a_dead_workers_outbox_is_drained_by_another_worker(
    redis: Redis, worker_env: pytest.MonkeyPatch, stub: IngestStub
) -> None:
    # Given a worker that wrote three events and then died (its heartbeat is long past)
    ownership, lease = await owned(redis, "ghost", "sess_ghost")
    events = [status_event("sess_ghost") for _ in range(3)]
    for event in events:
        await ownership.emit(lease, event_to_json(event))
    await redis.zadd(keys.workers(), {"ghost": now_ms() - 600_000})
    await redis.delete(keys.session_lease("sess_ghost"))
    # When a live worker runs
    worker = Worker(get_settings(), session_factory=fake_factory(DrivingLog()), health_port=None)
    await worker.start()
    # Then it takes the ghost's session over, posts the ghost's events, and forgets the ghost
    await eventually(lambda: len(stub.select(session_id="sess_ghost")) >= 3, what="ghost events posted")
    assert {e.id for e in events} <= {e["id"] for e in stub.select()}
    await eventually(lambda: "sess_ghost" in worker.sessions, what="session taken over")

    async def ghost_gone() -> bool:
        return await redis.zscore(keys.workers(), "ghost") is None and not await redis.exists(keys.outbox("ghost"))

    await eventually(ghost_gone, what="ghost deregistered")
    await worker.stop()


async def test_health_ready_and_metrics_endpoints(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    worker = Worker(get_settings(), session_factory=fake_factory(DrivingLog()), health_port=0)
    await worker.start()
    assert worker.health is not None
    base = f"http://127.0.0.1:{worker.health.port}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(base + "/healthz")).status_code == 200
        assert (await http.get(base + "/readyz")).status_code == 200
        metrics = await http.get(base + "/metrics")
        assert metrics.status_code == 200 and "wagw_worker_outbox_depth" in metrics.text
        assert "wagw_worker_browser_pss_bytes" in metrics.text
        # While draining (SIGTERM), it is alive but no longer ready
        worker.draining = True
        assert (await http.get(base + "/readyz")).status_code == 503
        assert (await http.get(base + "/healthz")).status_code == 200
        worker.draining = False
    await worker.stop()
