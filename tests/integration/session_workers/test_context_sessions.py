"""Sessions on the simulator with real Chromium, `context` strategy: one browser for the whole module."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from session_workers.browser import SharedBrowserHost, parse_context_archive
from session_workers.metrics import browser_pids
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.commands import RequestPairingCodeCommand, SendTextCommand, enqueue_command
from shared.settings import get_settings
from tests.integration.session_workers.conftest import (
    control,
    eventually,
    new_session,
    scan_latest_qr,
    sim_state,
    start_context_worker,
)
from tests.integration.session_workers.kms import kms_key

pytestmark = pytest.mark.browser
__all__ = ["kms_key"]


@pytest.fixture
async def worker(
    worker_env: pytest.MonkeyPatch, context_host: SharedBrowserHost, workers: list[Worker]
) -> AsyncIterator[Worker]:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "context")
    get_settings.cache_clear()
    started = Worker(get_settings(), host=context_host, health_port=None)
    workers.append(started)
    await started.start()
    yield started


async def test_qr_scan_ready_send_ack_inbound_offline_conflict_logout(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    phone = "15550000101"
    sid = await new_session(redis, "sess_life")
    # Given the session shows rotating QR codes
    await stub.wait_for(lambda: len(stub.select("session.qr", sid)) >= 2, 20, "a rotated QR")
    attempts = [e["data"]["attempt"] for e in stub.select("session.qr", sid)]
    assert attempts == sorted(attempts) and attempts[0] == 1
    # When the phone scans it
    await scan_latest_qr(stub, sim, sid, phone)
    # Then it is authenticated, then ready with the phone; the worker owns it and saved its auth
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    assert stub.statuses(sid)[-2:] == ["authenticated", "ready"]
    assert stub.select("session.status", sid)[-1]["data"]["phone"] == phone
    assert await redis.hget(keys.session(sid), "owner") == worker.worker_id
    assert await redis.get(keys.session_lease(sid)) == worker.worker_id
    await eventually(lambda: redis.exists(keys.session_auth(sid)), what="auth saved")
    assert await redis.sismember(keys.auth_index(), sid)

    # When the tenant sends a text, twice with the same client message id
    for command_id in ("cmd_a", "cmd_b"):
        await enqueue_command(
            redis,
            SendTextCommand(
                command_id=command_id,
                session_id=sid,
                message_id="msg_1",
                client_message_id="order-1",
                to="15557770001",
                text="hello",
            ),
        )
    # Then it goes out once, reported as message.sent with WhatsApp's id
    sent = await stub.wait_for(lambda: stub.select("message.sent", sid), 20, "message.sent")
    wa_id = sent[0]["data"]["message_id"]
    assert wa_id.startswith("true_15557770001@c.us_") and sent[0]["data"]["client_message_id"] == "order-1"

    async def both_commands_done() -> bool:
        groups = await redis.xinfo_groups(keys.session_commands(sid))
        return bool(groups) and groups[0]["pending"] == 0 and groups[0]["entries-read"] == 2

    await eventually(both_commands_done, what="both commands acknowledged")
    assert len(stub.select("message.sent", sid)) == 1
    assert (await sim_state(sim))["stats"]["sends"] == 1

    # When the recipient reads it, and a contact writes
    await control(sim, "ack", phone=phone, message_id=wa_id, ack=3)
    await control(sim, "inbound", phone=phone, sender="15557770001@c.us", body="hi back")
    # Then the ack and the inbound message are reported
    reads = await stub.wait_for(
        lambda: [e for e in stub.select("message.ack", sid) if e["data"]["ack"] == 3], 20, "message.ack (read)"
    )
    assert reads[0]["data"] == {"message_id": wa_id, "chat_id": "15557770001@c.us", "ack": 3, "reader": None}
    received = await stub.wait_for(lambda: stub.select("message.received", sid), 20, "message.received")
    assert received[0]["data"]["body"] == "hi back" and received[0]["data"]["from"] == "15557770001@c.us"

    # When the phone goes offline and back, then the account is opened elsewhere
    await control(sim, "offline", phone=phone)
    await stub.wait_for(lambda: stub.statuses(sid)[-1] == "disconnected", 20, "disconnected")
    await control(sim, "online", phone=phone)
    await stub.wait_for(lambda: stub.statuses(sid)[-1] == "ready", 20, "ready again")
    await control(sim, "conflict", phone=phone)
    await stub.wait_for(lambda: stub.statuses(sid)[-1] == "conflict", 20, "conflict")
    reasons = [e["data"]["reason"] for e in stub.select("session.status", sid)]
    assert "offline" in reasons and "opened_elsewhere" in reasons and "reconnected" in reasons

    # When the user logs the linked device out from the phone
    await control(sim, "logout", phone=phone)
    # Then the session is logged out with a reason, its auth is gone and the worker let it go (parked)
    await stub.wait_for(lambda: stub.statuses(sid)[-1] == "logged_out", 20, "logged_out")
    assert stub.select("session.status", sid)[-1]["data"]["reason"] == "user_initiated"
    await eventually(lambda: sid not in worker.sessions, what="session released")
    assert not await redis.exists(keys.session_auth(sid), keys.session_lease(sid))
    assert not await redis.sismember(keys.auth_index(), sid)
    assert not await redis.sismember(keys.unowned_sessions(), sid)
    assert await redis.hget(keys.session(sid), "owner") is None


async def test_login_by_pairing_code(redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub) -> None:
    sid = await new_session(redis, "sess_pair")
    await stub.wait_for(lambda: stub.select("session.qr", sid), 20, "QR first")
    # When the tenant asks for a pairing code and the user types it on the phone
    await enqueue_command(redis, RequestPairingCodeCommand(session_id=sid, phone="+1 555 000 0202"))
    codes = await stub.wait_for(lambda: stub.select("session.pairing_code", sid), 20, "pairing code")
    await control(sim, "pair", code=codes[-1]["data"]["code"])
    # Then the session becomes ready for that phone
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    assert stub.select("session.status", sid)[-1]["data"]["phone"] == "15550000202"


async def test_context_strategy_restores_the_session_on_another_worker_without_a_new_scan(
    redis: Redis,
    worker_env: pytest.MonkeyPatch,
    context_host: SharedBrowserHost,
    workers: list[Worker],
    sim: SimulatorServer,
    stub: IngestStub,
    kms_key: str,
) -> None:
    worker = await start_context_worker(worker_env, context_host, workers, WAGW_AUTH_KMS_KEY_ID=kms_key)
    phone = "15550000303"
    sid = await new_session(redis, "sess_ctxmove")
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    # When the worker stops gracefully (the page's storage captured in the page) and another worker takes over
    await worker.stop()
    archive = await worker.auth.load(sid)
    assert archive is not None and archive.strategy == "context"
    header, state = parse_context_archive(archive.raw)
    # Then the archive holds the page's keys (none lost) and every database the page keeps
    assert header["lost_keys"] == 0
    databases = {db["name"]: db for db in json.loads(state)["indexedDB"]}
    assert {"wawc", "model-storage"} <= set(databases)
    assert databases["wawc"]["version"] == 2
    assert {s["name"] for s in databases["wawc"]["stores"]} == {"user", "messages"}
    # And what Redis holds is sealed: nothing of the page's stores is readable there
    binary = Redis.from_url(get_settings().redis_url)
    record = await binary.hgetall(keys.session_auth(sid))
    await binary.aclose()
    assert record[b"enc"] == b"kms-aes256gcm/1"
    stored = b"".join(record.values())
    for plaintext in (b"WASecretBundle", b"model-storage", b"sealed_token", phone.encode(), b"wawc"):
        assert plaintext not in stored and plaintext in archive.raw
    before = (await sim_state(sim))["stats"]
    qrs_before = len(stub.select("session.qr", sid))
    second = Worker(get_settings(), host=context_host, health_port=None)
    await second.start()
    try:
        # And the restored page decrypts its sealed token with the restored key and logs in: ready, no new QR
        await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 20, "ready on the second worker")
        assert len(stub.select("session.qr", sid)) == qrs_before
        after = (await sim_state(sim))["stats"]
        assert after["restore_failures"] == before["restore_failures"]
        assert after["failed_logins"] == before["failed_logins"] and after["conflicts"] == before["conflicts"]
        assert after["logins"] == before["logins"] + 1
    finally:
        await second.stop()


async def test_an_archive_from_before_in_page_capture_says_so_and_the_page_asks_for_a_scan(
    context_host: SharedBrowserHost, sim: SimulatorServer
) -> None:
    # Given a storage-state archive of the earlier format, whose CryptoKey was saved as {} (Playwright loses it)
    origin = sim.url.rstrip("/")
    auth = {"device_id": "dev_old", "key": {}, "linked_at": 1}
    legacy = {
        "cookies": [],
        "origins": [
            {
                "origin": origin,
                "localStorage": [{"name": "WASecretBundle", "value": json.dumps({"device_id": "dev_old"})}],
                "indexedDB": [
                    {
                        "name": "wawc",
                        "version": 2,
                        "stores": [
                            {
                                "name": "user",
                                "autoIncrement": False,
                                "indexes": [],
                                "records": [{"key": "auth", "value": auth}],
                            },
                            {"name": "messages", "autoIncrement": False, "indexes": [], "records": []},
                        ],
                    }
                ],
            }
        ],
    }
    failures_before = (await sim_state(sim))["stats"]["restore_failures"]
    # When a worker opens it
    session = await context_host.open("sess_legacy", json.dumps(legacy).encode(), on_gone=lambda: None)
    try:
        page = await session.context.new_page()
        await page.goto(sim.url)
        # Then the page reports why it cannot use it and shows a QR code, instead of failing silently
        await eventually(lambda: _restore_failures(sim, failures_before), what="restore failure")
        reasons = [c["restore_failure"] for c in (await sim_state(sim))["clients"] if c["restore_failure"]]
        assert "stored key not a CryptoKey (lost in a storage round trip)" in reasons
    finally:
        await session.close()


async def _restore_failures(sim: SimulatorServer, before: int) -> bool:
    return bool((await sim_state(sim))["stats"]["restore_failures"] > before)


async def test_renderer_crash_reopens_the_page_and_a_crash_loop_fails_the_session(
    redis: Redis,
    worker_env: pytest.MonkeyPatch,
    context_host: SharedBrowserHost,
    sim: SimulatorServer,
    stub: IngestStub,
) -> None:
    worker_env.setenv("WAGW_CRASH_LOOP_LIMIT", "2")
    worker_env.setenv("WAGW_AUTH_STRATEGY", "context")
    get_settings.cache_clear()
    worker = Worker(get_settings(), host=context_host, health_port=None)
    await worker.start()
    try:
        sid = await new_session(redis, "sess_crash")
        await scan_latest_qr(stub, sim, sid, "15550000404")
        await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")

        async def crash_renderer() -> None:
            page = worker.sessions[sid].driver.page  # type: ignore[attr-defined]
            cdp = await page.context.new_cdp_session(page)
            with pytest.raises(Exception):  # noqa: B017 - the target dies under the call
                await cdp.send("Page.crash")

        # When the renderer crashes once
        await crash_renderer()
        # Then the page is reopened in the same context and the session is ready again, without a QR
        await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 20, "ready after a crash")
        assert "renderer_crash" in [e["data"]["reason"] for e in stub.select("session.status", sid)]
        assert len(stub.select("session.qr", sid)) == 1
        # When it crashes again within the window
        await crash_renderer()
        # Then the session is failed with the reason instead of looping, and released
        await stub.wait_for(lambda: stub.statuses(sid)[-1] == "failed", 20, "failed")
        assert stub.select("session.status", sid)[-1]["data"]["reason"] == "crash_loop:renderer"
        await eventually(lambda: sid not in worker.sessions, what="released")
        assert worker.metrics.restarts >= 1
    finally:
        await worker.stop()
        await asyncio.sleep(0)


def browser_main_pids() -> list[int]:
    """The main process of every Chromium under this test process (renderers and helpers carry --type=)."""
    pids = []
    for pid in browser_pids():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(a.startswith(b"--type=") for a in args):
            pids.append(pid)
    return pids


async def test_a_browser_crash_restores_every_session_from_its_archive_without_a_qr(
    redis: Redis, worker: Worker, context_host: SharedBrowserHost, sim: SimulatorServer, stub: IngestStub
) -> None:
    sid = await new_session(redis, "sess_ctxcrash")
    await scan_latest_qr(stub, sim, sid, "15550000505")
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    await eventually(lambda: redis.exists(keys.session_auth(sid)), what="auth saved")
    failures_before = (await sim_state(sim))["stats"]["restore_failures"]
    sends_before = (await sim_state(sim))["stats"]["sends"]
    # When the shared browser dies (every context with it) as a send is being handled
    await enqueue_command(
        redis,
        SendTextCommand(
            session_id=sid, message_id="msg_crash", client_message_id="crash-1", to="15557770001", text="in the crash"
        ),
    )
    for pid in browser_main_pids():
        os.kill(pid, signal.SIGKILL)
    # Then the worker relaunches it and the session comes back from its archive: ready again, no new QR
    await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 30, "ready after the browser crash")
    assert "shared_browser_crash" in [e["data"]["reason"] for e in stub.select("session.status", sid)]
    assert len(stub.select("session.qr", sid)) == 1
    assert (await sim_state(sim))["stats"]["restore_failures"] == failures_before
    # And the send goes out once, reported sent (it used to fail the session: internal_error)
    sent = await stub.wait_for(lambda: stub.select("message.sent", sid), 30, "the send after the crash")
    assert [e["data"]["client_message_id"] for e in sent] == ["crash-1"]
    assert not stub.select("message.failed", sid) and "failed" not in stub.statuses(sid)
    assert (await sim_state(sim))["stats"]["sends"] == sends_before + 1


async def test_a_session_whose_keys_cannot_be_exported_says_so_in_its_ready_status(
    redis: Redis, worker_env: pytest.MonkeyPatch, workers: list[Worker], sim: SimulatorServer, stub: IngestStub
) -> None:
    # Given a worker whose pages run without the WebCrypto wrapper (as every session linked before it did)
    worker_env.setenv("WAGW_AUTH_STRATEGY", "context")
    worker_env.setenv("WAGW_CONTEXT_EXPORTABLE_KEYS", "false")
    get_settings.cache_clear()
    plain = SharedBrowserHost(get_settings())
    await plain.start()
    worker = Worker(get_settings(), host=plain, health_port=None)
    workers.append(worker)
    try:
        await worker.start()
        sid = await new_session(redis, "sess_lost_keys")
        # When the phone scans its QR and the page makes its keys non-extractable
        await scan_latest_qr(stub, sim, sid, "15550000177")
        # Then, once its auth is saved, its status is still ready but says the archive cannot carry the login
        marked = await stub.wait_for(
            lambda: [
                e
                for e in stub.select("session.status", sid)
                if (e["data"].get("reason") or "").startswith("auth_keys_not_archivable")
            ],
            30,
            "a ready status with the reason",
        )
        assert marked[0]["data"]["status"] == "ready"
        assert "needs a new QR scan" in marked[0]["data"]["reason"]
        # And the saved archive is marked as well
        archive = await worker.auth.load(sid)
        assert archive is not None and parse_context_archive(archive.raw)[0]["lost_keys"] > 0
    finally:
        await worker.stop()
        await plain.close()
