"""`profile` strategy with real Chromium: failover without a QR, pending commands once, SIGTERM handover."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from session_workers.driver import api_message_suffix
from session_workers.metrics import browser_pids
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.commands import COMMANDS_GROUP, SendTextCommand, enqueue_command
from shared.settings import get_settings
from tests.integration.session_workers.conftest import eventually, new_session, scan_latest_qr, sim_state
from wagw_local.services import free_port

pytestmark = pytest.mark.browser
CONTACT = "15557770009"


def named(worker_id: str) -> Worker:
    return Worker(get_settings().model_copy(update={"worker_id": worker_id}), health_port=None)


def send(sid: str, client_message_id: str, text: str) -> SendTextCommand:
    return SendTextCommand(
        session_id=sid,
        message_id=f"msg_{client_message_id}",
        client_message_id=client_message_id,
        to=CONTACT,
        text=text,
    )


async def test_killed_owner_is_replaced_without_qr_and_pending_commands_go_out_once(
    redis: Redis, worker_env: pytest.MonkeyPatch, sim: SimulatorServer, stub: IngestStub, workers: list[Worker]
) -> None:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "profile")
    # The simulator, like WhatsApp, counts a page as connected up to 1.5 s after its last poll. With the suite's
    # 1.5 s leases B could log in while A's dead page still counted; production leases last 6 s.
    worker_env.setenv("WAGW_LEASE_TTL_MS", "4000")
    get_settings.cache_clear()
    phone = "15550000505"
    a, b = named("fo-a"), named("fo-b")
    workers.extend([a, b])
    await a.start()
    sid = await new_session(redis, "sess_fo")
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 30, "ready on A")
    await eventually(lambda: redis.exists(keys.session_auth(sid)), what="auth saved on ready")
    await b.start()
    qrs_before = len(stub.select("session.qr", sid))
    stream = keys.session_commands(sid)

    # When A dies (no handover, its browser gone as with SIGKILL)
    a.kill()
    await a.close_after_kill()
    # ... having read one command it never started, and sent another without recording it
    await enqueue_command(redis, send(sid, "read-by-a", "read by A, never sent"))
    await enqueue_command(redis, send(sid, "sent-by-a", "sent by A, not recorded"))
    read = await redis.xreadgroup(COMMANDS_GROUP, "fo-a", {stream: ">"}, count=2)
    assert len(read[0][1]) == 2
    key_used_by_a = f"true_{CONTACT}@c.us_{api_message_suffix(sid, 'sent-by-a')}"
    await redis.set(keys.session_sending(sid, "sent-by-a"), key_used_by_a)
    client_id = next(c["client_id"] for c in (await sim_state(sim))["clients"] if c["phone"] == phone)
    async with httpx.AsyncClient() as http:
        went_out = await http.post(
            sim.url + "api/send",
            json={
                "client_id": client_id,
                "to": f"{CONTACT}@c.us",
                "body": "sent by A, not recorded",
                "id": key_used_by_a,
            },
        )
        assert went_out.status_code == 200
    # ... and a command arrives during the gap
    await enqueue_command(redis, send(sid, "gap", "sent during the gap"))

    # Then B restores the session from Redis, ready again with no QR shown
    await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 30, "ready on B")
    assert len(stub.select("session.qr", sid)) == qrs_before
    assert await redis.hget(keys.session(sid), "owner") == "fo-b"
    # And every command is reported sent once, and WhatsApp got each text once
    await stub.wait_for(lambda: len(stub.select("message.sent", sid)) >= 3, 30, "three message.sent")
    await asyncio.sleep(0.5)
    sent = stub.select("message.sent", sid)
    assert sorted(e["data"]["client_message_id"] for e in sent) == ["gap", "read-by-a", "sent-by-a"]
    state = await sim_state(sim)
    assert state["stats"]["duplicate_sends"] == 0, (state, sent)
    assert state["stats"]["conflicts"] == 0
    async with httpx.AsyncClient() as http:
        bodies = [
            m["body"] for m in (await http.get(sim.url + "control/sent", params={"phone": phone})).json()["messages"]
        ]
    assert sorted(bodies) == sorted(["read by A, never sent", "sent by A, not recorded", "sent during the gap"])
    groups = await redis.xinfo_groups(stream)
    assert groups[0]["pending"] == 0


async def test_sigterm_saves_releases_and_exits_in_time(
    redis: Redis, worker_env: pytest.MonkeyPatch, sim: SimulatorServer, stub: IngestStub
) -> None:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "profile")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "session_workers",
        "--worker-id",
        "w-term",
        "--health-port",
        str(port),
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    try:
        async with httpx.AsyncClient() as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, within=30, what="readyz")
        sid = await new_session(redis, "sess_term")
        await scan_latest_qr(stub, sim, sid, "15550000606")
        await stub.wait_for(lambda: "ready" in stub.statuses(sid), 30, "ready")
        # When ECS stops the task
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        # Then it exits cleanly within the stop timeout, its session saved and handed back at once
        assert code == 0
        assert time.monotonic() - started < get_settings().stop_timeout_seconds
        assert await redis.sismember(keys.unowned_sessions(), sid)
        assert not await redis.exists(keys.session_lease(sid))
        assert await redis.hget(keys.session(sid), "owner") is None
        assert await redis.exists(keys.session_auth(sid))
        assert await redis.zscore(keys.workers(), "w-term") is None
        assert await redis.xlen(keys.outbox("w-term")) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def session_browser_pid(root: str) -> int:
    """The main Chromium process of a profile (the one with that --user-data-dir and no --type)."""
    for pid in browser_pids():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"--user-data-dir={root}".encode() in args and not any(a.startswith(b"--type=") for a in args):
            return pid
    raise LookupError(root)


async def test_a_killed_session_browser_is_relaunched_from_the_saved_auth(
    redis: Redis, worker_env: pytest.MonkeyPatch, sim: SimulatorServer, stub: IngestStub, workers: list[Worker]
) -> None:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "profile")
    get_settings.cache_clear()
    worker = named("crash-w")
    workers.append(worker)
    await worker.start()
    sid = await new_session(redis, "sess_browser_crash")
    await scan_latest_qr(stub, sim, sid, "15550000707")
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 30, "ready")
    await eventually(lambda: redis.exists(keys.session_auth(sid)), what="auth saved")
    qrs = len(stub.select("session.qr", sid))
    # When the session's browser process dies
    os.kill(session_browser_pid(str(worker.host.base / sid)), signal.SIGKILL)  # type: ignore[attr-defined]
    # Then it is relaunched from the saved auth and ready again, with no QR
    await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 30, "ready after the browser crash")
    assert "browser_crash" in [e["data"]["reason"] for e in stub.select("session.status", sid)]
    assert len(stub.select("session.qr", sid)) == qrs
    assert worker.metrics.restarts == 1
