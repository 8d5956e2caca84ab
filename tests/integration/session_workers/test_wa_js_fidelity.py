"""The session worker on a page that behaves as wa-js 4.6.0 does (test_wa_js_contract.py): what it emits."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from session_workers.browser import SharedBrowserHost
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.commands import RequestPairingCodeCommand, SendTextCommand, enqueue_command
from tests.integration.session_workers.conftest import (
    control,
    eventually,
    new_session,
    scan_latest_qr,
    sim_state,
    start_context_worker,
)

pytestmark = pytest.mark.browser

GROUP = "120363000000000077@g.us"


@pytest.fixture
async def worker(worker_env: pytest.MonkeyPatch, context_host: SharedBrowserHost, workers: list[Worker]) -> Worker:
    return await start_context_worker(worker_env, context_host, workers, WAGW_WA_JS_READY_TIMEOUT_SECONDS="2")


async def linked_session(redis: Redis, stub: IngestStub, sim: SimulatorServer, sid: str, phone: str) -> None:
    await new_session(redis, sid)
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")


def send(sid: str, client_id: str, to: str, text: str = "hello") -> SendTextCommand:
    return SendTextCommand(session_id=sid, message_id=f"msg_{client_id}", client_message_id=client_id, to=to, text=text)


async def test_a_qr_page_is_never_ready_and_a_scan_makes_it_ready(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    # Given a page showing QR codes (wa-js has fired conn.main_ready on it)
    sid = await new_session(redis, "fid_qr")
    await stub.wait_for(lambda: len(stub.select("session.qr", sid)) >= 2, 20, "two QR codes")
    # Then it is not ready and saved no auth
    assert "ready" not in stub.statuses(sid)
    assert not await redis.exists(keys.session_auth(sid))
    # When the phone scans it
    await scan_latest_qr(stub, sim, sid, "15550011001")
    # Then it authenticates and then becomes ready, once
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    assert stub.statuses(sid)[-2:] == ["authenticated", "ready"]
    await eventually(lambda: redis.exists(keys.session_auth(sid)), what="auth saved once ready")


async def test_group_receipts_peer_acks_and_error_acks(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    sid, phone = "fid_acks", "15550011002"
    await linked_session(redis, stub, sim, sid, phone)
    # When the tenant sends to a group and to a contact
    await enqueue_command(redis, send(sid, "to-group", GROUP))
    await enqueue_command(redis, send(sid, "to-contact", "15550011099"))
    await stub.wait_for(lambda: len(stub.select("message.sent", sid)) == 2, 20, "two message.sent")
    sent = {e["data"]["client_message_id"]: e["data"]["message_id"] for e in stub.select("message.sent", sid)}
    # ... and a group member reads it (the receipt's key carries the reader), the contact's phone plays it (5: peer),
    # and WhatsApp marks the contact's message failed
    reader = "444555666777888@lid"
    await control(sim, "ack", phone=phone, message_id=sent["to-group"], ack=3, reader=reader)
    await control(sim, "ack", phone=phone, message_id=sent["to-contact"], ack=5)
    await control(sim, "ack", phone=phone, message_id=sent["to-contact"], ack=-1)

    # Then the group read is reported on the message we sent, with who read it
    def read_and_played() -> list[dict[str, object]]:
        found = [e["data"] for e in stub.select("message.ack", sid) if e["data"]["ack"] >= 3]
        return found if len(found) >= 2 else []

    acks = await stub.wait_for(read_and_played, 20, "acks 3 and 5")
    assert {"message_id": sent["to-group"], "chat_id": GROUP, "ack": 3, "reader": reader} in acks
    assert any(a["message_id"] == sent["to-contact"] and a["ack"] == 5 for a in acks)
    # And the error ack is a message.failed naming WhatsApp's id
    failed = await stub.wait_for(lambda: stub.select("message.failed", sid), 20, "message.failed")
    assert failed[0]["data"]["message_id"] == sent["to-contact"]
    assert failed[0]["data"]["reason"].startswith("ack_error: ")


async def test_an_earlier_attempt_that_failed_is_reported_failed_not_resent(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    sid, phone = "fid_resend", "15550011003"
    await linked_session(redis, stub, sim, sid, phone)
    # Given a send WhatsApp refused (the message stays in the chat with an error ack)
    await control(sim, "send_failure", phone=phone, result="ERROR_EXPIRED")
    await enqueue_command(redis, send(sid, "first", "15550011098", "expired"))
    failed = await stub.wait_for(lambda: stub.select("message.failed", sid), 20, "message.failed")
    assert failed[0]["data"]["reason"].startswith("ERROR_EXPIRED: ")
    assert not stub.select("message.sent", sid)
    # When an owner finds only the 'sending' marker of another such send (it died after handing it over)
    await control(sim, "send_failure", phone=phone, result="ERROR_UNKNOWN")
    await enqueue_command(redis, send(sid, "second", "15550011098", "unknown"))
    await stub.wait_for(lambda: len(stub.select("message.failed", sid)) == 2, 20, "second message.failed")
    await redis.delete(keys.session_sent(sid, "second"))
    await enqueue_command(redis, send(sid, "second", "15550011098", "unknown"))

    # Then asking WhatsApp shows the failure: the same failure event again (ingest drops it), nothing sent
    async def third_command_done() -> bool:
        groups = await redis.xinfo_groups(keys.session_commands(sid))
        return bool(groups) and groups[0]["pending"] == 0 and groups[0]["entries-read"] == 3

    await eventually(third_command_done, what="the repeated command acknowledged")
    assert await redis.get(keys.session_sent(sid, "second")) == "failed"
    # (the command is acknowledged when its event is in the outbox; the post follows, after the outbox's linger)
    second_failure = stub.select("message.failed", sid)[1]["id"]
    await eventually(lambda: stub.seen[second_failure] == 2, what="the failure event posted again")
    assert not stub.select("message.sent", sid)
    assert (await sim_state(sim))["stats"]["duplicate_sends"] == 0


async def test_a_phone_typed_message_is_reported_once_and_the_api_echo_never(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    sid, phone = "fid_own", "15550011004"
    await linked_session(redis, stub, sim, sid, phone)
    # When the tenant sends through the API (the page echoes it as a new message from me) and the owner types
    await enqueue_command(redis, send(sid, "api-1", "15550011097"))
    await stub.wait_for(lambda: stub.select("message.sent", sid), 20, "message.sent")
    typed = await control(sim, "typed", phone=phone, to="15550011097", body="from the phone")
    # Then the typed one is one message.sent from the phone, with an id derived from WhatsApp's
    own = await stub.wait_for(
        lambda: [e for e in stub.select("message.sent", sid) if e["data"]["origin"] == "phone"], 20, "typed"
    )
    assert len(own) == 1 and own[0]["data"]["message_id"] == typed["id"] and own[0]["id"].startswith("evw_")
    assert [e["data"]["origin"] for e in stub.select("message.sent", sid)].count("api") == 1


async def test_pairing_code_refreshes_and_expiry_reach_the_tenant(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    await control(sim, "page", link_code_ttl_ms=300)
    try:
        sid = await new_session(redis, "fid_pair")
        await stub.wait_for(lambda: stub.select("session.qr", sid), 20, "QR first")
        # When the tenant asks for a pairing code and nobody types it
        await enqueue_command(redis, RequestPairingCodeCommand(session_id=sid, phone="+1 555 001 1005"))
        # Then every code arrives with its expiry and attempt, and then the session fails with the reason
        await stub.wait_for(lambda: "failed" in stub.statuses(sid), 20, "failed")
        codes = [e["data"] for e in stub.select("session.pairing_code", sid)]
        assert [c["attempt"] for c in codes] == [1, 2, 3, 4, 5, 6] and all(c["expires_at"] for c in codes)
        assert stub.select("session.status", sid)[-1]["data"]["reason"] == "pairing_code_expired"
        await eventually(lambda: sid not in worker.sessions, what="session parked")
    finally:
        await control(sim, "page", link_code_ttl_ms=195_000)


async def test_a_whatsapp_build_wa_js_cannot_hook_fails_the_session_plainly(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    await control(sim, "page", wa_js_incompatible=True)
    try:
        # When a session opens on a WhatsApp Web build where WPP never becomes ready
        sid = await new_session(redis, "fid_broken")
        # Then within the bound it is failed with a plain reason, counted, and parked
        await stub.wait_for(lambda: "failed" in stub.statuses(sid), 20, "failed")
        assert stub.select("session.status", sid)[-1]["data"]["reason"] == "wa_js_incompatible"
        assert worker.metrics.wa_js_incompatible >= 1
        text = worker.metrics.prometheus(worker_id="w", outbox_depth=0, pss_bytes=0, capacity=1)
        assert "wagw_worker_wa_js_incompatible_total" in text
        await eventually(lambda: sid not in worker.sessions, what="session parked")
    finally:
        await control(sim, "page", wa_js_incompatible=False)
