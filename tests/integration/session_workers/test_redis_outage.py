"""A Redis outage costs delay, never data: a real worker on a redis-server of its own that the test pauses (SIGSTOP,
as a failover or a partition does) at the exact moment that used to lose something.

The sessions are the real `BrowserSession` (page-event handling, emit, command loop, send-once protocol) without a
browser: page events are handed to it as the driver would, and sends go to a recording driver.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from session_workers.driver import ExistingMessage, SendResult
from session_workers.session import BrowserSession
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.commands import COMMANDS_GROUP, SendTextCommand
from shared.events import SessionStatus
from shared.settings import get_settings
from tests.integration.session_workers.conftest import eventually, new_session
from wagw_local.services import ServiceProcess, start_redis

SENDER = "6281111@c.us"


@dataclass
class RecordingDriver:
    """Stands in for the page's WPP calls on the send path: records what WhatsApp got."""

    sent: dict[str, str] = field(default_factory=dict)  # message key -> text

    async def resolve_chat(self, to: str, suffix: str) -> tuple[str, str]:
        chat = f"{to}@c.us"
        return chat, f"true_{chat}_{suffix}"

    async def find_message(self, message_key: str) -> ExistingMessage:
        return ExistingMessage(message_key in self.sent, 1 if message_key in self.sent else None)

    async def send_text(self, resolved_chat: str, text: str, message_key: str) -> SendResult:
        self.sent[message_key] = text
        return SendResult(message_key, 1, None)


class PagelessSession(BrowserSession):
    """The real session minus the browser: started as if its page were ready."""

    async def start(self) -> None:
        self.driver = RecordingDriver()  # type: ignore[assignment]
        self._spawn(self._event_loop())
        await self.set_status(SessionStatus.STARTING)
        self.ready.set()
        self._spawn(self._command_loop())


@pytest.fixture
def own_redis() -> Iterator[ServiceProcess]:
    server = start_redis()
    try:
        yield server
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
async def outage_env(
    own_redis: ServiceProcess, worker_env: pytest.MonkeyPatch, stub: IngestStub
) -> AsyncIterator[Redis]:
    worker_env.setenv("WAGW_REDIS_URL", own_redis.url)
    get_settings.cache_clear()
    client = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def driving(redis: Redis, workers: list[Worker], spool: Path, session_id: str) -> PagelessSession:
    await new_session(redis, session_id)
    worker = Worker(get_settings(), session_factory=PagelessSession, health_port=None, spool_dir=spool)
    workers.append(worker)
    await worker.start()
    session = await eventually(lambda: worker.sessions.get(session_id), 10, "the session claimed")
    assert isinstance(session, PagelessSession)
    await eventually(lambda: session.ready.is_set(), 10, "the session started")
    return session


def message(index: int) -> dict[str, Any]:
    return {
        "id": f"false_{SENDER}_3EB0OUTAGE{index:04d}",
        "from": SENDER,
        "chat": SENDER,
        "body": f"during the outage {index}",
        "type": "chat",
        "t": int(time.time()),
    }


async def test_messages_a_page_hands_over_while_redis_is_paused_reach_ingest_when_it_is_back(
    outage_env: Redis,
    own_redis: ServiceProcess,
    stub: IngestStub,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    # Given a worker driving a session
    session = await driving(outage_env, workers, tmp_path, "sess_outage_in")
    # When Redis stops answering and the page then hands the session messages (WhatsApp counts them delivered)
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        for index in range(4):
            session._page_event("message", message(index))
        # ... and the session stops driving for safety, its lease not renewable: one event's write in flight,
        # three still in its inbox
        await eventually(lambda: session.stopping, 10, "the session stopped driving")
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    # Then every message reaches ingest once Redis is back
    bodies = {f"during the outage {index}" for index in range(4)}
    await stub.wait_for(
        lambda: bodies <= {e["data"]["body"] for e in stub.select("message.received")}, 30, "all four messages"
    )
    assert not session.worker.spool


async def test_a_command_read_by_a_lost_reply_is_still_sent_by_the_live_owner(
    outage_env: Redis, stub: IngestStub, workers: list[Worker], tmp_path: Path
) -> None:
    # Given a live session serving commands
    session = await driving(outage_env, workers, tmp_path, "sess_lost_reply")
    command = SendTextCommand(
        session_id=session.id, message_id="msg_lost_1", client_message_id="lost-1", to="6282222", text="hello"
    )
    # When Redis delivers a command to this worker's consumer but the reply never reaches it (what a read the
    # worker gave up on during an outage does when Redis comes back): XADD and the read in one transaction, so
    # the session's own blocking read cannot take it first
    stream = keys.session_commands(session.id)
    async with outage_env.pipeline(transaction=True) as pipe:
        pipe.xadd(stream, {"command": command.model_dump_json()})
        pipe.xreadgroup(COMMANDS_GROUP, session.worker.worker_id, {stream: ">"}, count=10)
        await pipe.execute()
    # Then the session still sends it, once, and reports it
    driver = session.driver
    assert isinstance(driver, RecordingDriver)
    await eventually(lambda: list(driver.sent.values()) == ["hello"], 15, "the stranded command sent")
    await stub.wait_for(lambda: stub.select("message.sent", session.id), 15, "message.sent")
    assert not await outage_env.xpending_range(stream, COMMANDS_GROUP, min="-", max="+", count=10)


async def test_events_whose_outbox_entries_a_redis_restart_lost_are_written_again(
    worker_env: pytest.MonkeyPatch, stub: IngestStub, workers: list[Worker], tmp_path: Path
) -> None:
    # Given a worker driving a session on a redis-server with a snapshot, and ingest failing for a few seconds
    server = start_redis(workdir=tmp_path / "redis")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    worker_env.setenv("WAGW_REDIS_URL", server.url)
    get_settings.cache_clear()
    client = Redis.from_url(server.url, decode_responses=True)
    try:
        session = await driving(client, workers, tmp_path, "sess_restart")
        await client.save()
        stub.fail_next(4, 503, retry_after=1.5)
        # When the page hands over two messages (written to the outbox, not yet posted) and Redis then restarts
        # from its snapshot, without them (as a failover loses the last writes)
        for index in range(2):
            session._page_event("message", message(index))
        outbox = keys.outbox(session.worker.worker_id)
        await eventually(lambda: _xlen(client, outbox, 2), 10, "both in the outbox")
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        server = start_redis(port, tmp_path / "redis")
        # Then both still reach ingest
        bodies = {"during the outage 0", "during the outage 1"}
        await stub.wait_for(
            lambda: bodies <= {e["data"]["body"] for e in stub.select("message.received")}, 30, "both messages"
        )
    finally:
        await client.aclose()
        server.stop()


async def _xlen(client: Redis, stream: str, at_least: int) -> bool:
    return int(await client.xlen(stream)) >= at_least


async def test_a_redis_timeout_in_the_command_loop_neither_fails_the_session_nor_strands_its_commands(
    own_redis: ServiceProcess, worker_env: pytest.MonkeyPatch, stub: IngestStub, workers: list[Worker], tmp_path: Path
) -> None:
    # Given a session on a lease long enough to outlive a short outage, and Redis calls that time out after 2 s
    worker_env.setenv("WAGW_REDIS_URL", own_redis.url + "?socket_timeout=2")
    worker_env.setenv("WAGW_LEASE_TTL_MS", "20000")
    get_settings.cache_clear()
    client = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        session = await driving(client, workers, tmp_path, "sess_cmd_timeout")
        # When Redis stops answering for longer than the timeout (the session's blocking read times out)
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(3.5)
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        # ... and a send is accepted once it is back
        command = SendTextCommand(
            session_id=session.id, message_id="msg_after_1", client_message_id="after-1", to="6283333", text="later"
        )
        await client.xadd(keys.session_commands(session.id), {"command": command.model_dump_json()})
        # Then the same session is still driving and sends it
        driver = session.driver
        assert isinstance(driver, RecordingDriver)
        await eventually(lambda: list(driver.sent.values()) == ["later"], 15, "the send after the outage")
        assert session.worker.sessions.get(session.id) is session and not session.stopping
        assert "failed" not in stub.statuses(session.id)
    finally:
        await client.aclose()


async def test_the_fleet_metrics_are_published_while_redis_is_paused(
    outage_env: Redis,
    own_redis: ServiceProcess,
    workers: list[Worker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a worker driving a session, with metrics on (EMF lines on stdout, as CloudWatch reads them)
    session = await driving(outage_env, workers, tmp_path, "sess_outage_metrics")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    # When Redis stops answering and the worker publishes its metrics
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        driven = len(session.worker.sessions)
        async with asyncio.timeout(10):
            await session.worker._publish_metrics()
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    # Then autoscaling still sees the sessions and the spool; only the outbox depth (a Redis read) is missing
    published = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = {m["Name"] for emf in published for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"ActiveSessions", "SpooledEvents", "BrowserPssBytes"} <= names
    assert "OutboxDepth" not in names
    fleet = next(emf for emf in published if "ActiveSessions" in emf)
    assert fleet["ActiveSessions"] == [float(driven)]
