"""Sending every message type through the page (wa-js names and shapes, test_wa_js_contract.py), with media by
URL from a real local HTTP server and by upload from the media bucket (LocalStack S3)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from session_workers.browser import SharedBrowserHost
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared.commands import (
    DeleteMessageCommand,
    EditMessageCommand,
    MarkReadCommand,
    SendMessageCommand,
    TypingCommand,
    enqueue_command,
)
from shared.outgoing import OutgoingContent
from shared.store import media as media_store
from shared.store import workspaces
from shared.store.media import MediaRecord
from shared.store.records import WorkspaceRecord
from tests.fixtures.media import MediaServer, png
from tests.integration.session_workers.conftest import control, new_session, scan_latest_qr, start_context_worker

pytestmark = pytest.mark.browser
PHONE = "15550012001"
CONTACT = "15550012099"
GROUP = "120363000000000088@g.us"


@pytest.fixture(scope="module")
def media_server() -> Iterator[MediaServer]:
    server = MediaServer(
        {"/photo.png": (png(), "image/png"), "/big.pdf": (b"%PDF-" + b"x" * 300_000, "application/pdf")}
    )
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def worker(
    worker_env: pytest.MonkeyPatch, media_bucket: str, context_host: SharedBrowserHost, workers: list[Worker]
) -> Worker:
    return await start_context_worker(
        worker_env,
        context_host,
        workers,
        WAGW_ALLOW_LOCAL_WEBHOOKS="true",  # the media host is on 127.0.0.1 (dev only)
        WAGW_MEDIA_MAX_BYTES='{"image": 100000, "video": 100000, "audio": 100000, "voice": 100000, '
        '"sticker": 100000, "document": 200000}',
    )


def send(sid: str, client_id: str, to: str, **content: Any) -> SendMessageCommand:
    return SendMessageCommand(
        session_id=sid,
        message_id=f"msg_{client_id}",
        client_message_id=client_id,
        to=to,
        content=OutgoingContent.model_validate(content),
    )


async def sent_messages(sim: SimulatorServer) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return dict((await http.get(sim.url + "control/sent", params={"phone": PHONE})).json())


async def test_every_type_goes_out_once_with_its_media_and_parts(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub, media_server: MediaServer
) -> None:
    sid = await new_session(redis, "msg_types")
    await scan_latest_qr(stub, sim, sid, PHONE)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    # Given an upload in the media bucket, and a message from the contact to react to and quote
    pdf = b"%PDF-1.4\n% wa-gateway test\n" + bytes(range(256)) * 4
    upload = MediaRecord(
        id="med_" + "0" * 26,
        workspace_id="ws_test",
        source="upload",
        mimetype="application/pdf",
        size=len(pdf),
        filename="invoice.pdf",
        s3_key=media_store.object_key("ws_test", "med_" + "0" * 26),
    )
    await media_store.save(redis, upload)
    await media_store.write(upload, pdf)
    inbound = await control(sim, "inbound", phone=PHONE, sender=f"{CONTACT}@c.us", body="my order?", id="MSGIN01")
    await stub.wait_for(lambda: stub.select("message.received", sid), 20, "the contact's message")
    # When the tenant sends one of each type
    commands = [
        send(sid, "img", CONTACT, type="image", text="the product", media={"url": f"{media_server.url}/moved"}),
        send(sid, "doc", CONTACT, type="document", media={"media_id": upload.id}),
        send(
            sid, "ptt", CONTACT, type="voice", media={"url": f"{media_server.url}/photo.png", "mimetype": "audio/ogg"}
        ),
        send(sid, "loc", CONTACT, type="location", location={"latitude": -6.2, "longitude": 106.8, "name": "Shop"}),
        send(sid, "vcf", CONTACT, type="contact", contact={"name": "Support", "phone": "6281100000999"}),
        send(sid, "rct", CONTACT, type="reaction", reaction={"message_id": inbound["id"], "emoji": "👍"}),
        send(sid, "rpl", GROUP, type="text", text="@15550012099 done", reply_to=inbound["id"], mentions=[CONTACT]),
    ]
    for command in commands:
        await enqueue_command(redis, command)
    # Then each is reported sent once, with its type
    events = await stub.wait_for(
        lambda: len(stub.select("message.sent", sid)) == 7 and stub.select("message.sent", sid),
        30,
        "seven message.sent",
    )
    kinds = {e["data"]["client_message_id"]: e["data"]["kind"] for e in events}
    assert kinds == {
        "img": "image",
        "doc": "document",
        "ptt": "voice",
        "loc": "location",
        "vcf": "contact",
        "rct": "reaction",
        "rpl": "text",
    }
    assert not stub.select("message.failed", sid)
    # And WhatsApp received each once, with the bytes, caption, quote, mentions, location and contact card
    sent = await sent_messages(sim)
    by_type = {m["type"]: m for m in sent["messages"]}
    assert by_type["image"]["media"]["sha256"] == hashlib.sha256(png()).hexdigest()
    assert by_type["image"]["caption"] == "the product" and by_type["image"]["media"]["mimetype"] == "image/png"
    assert by_type["document"]["media"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert by_type["document"]["media"]["filename"] == "invoice.pdf"
    assert by_type["ptt"]["media"]["mimetype"] == "audio/ogg"
    assert by_type["location"]["location"]["lat"] == -6.2 and by_type["location"]["location"]["loc"] == "Shop"
    assert "waid=6281100000999" in by_type["vcard"]["body"] and by_type["vcard"]["vcard_name"] == "Support"
    assert by_type["chat"]["quoted"] == inbound["id"] and by_type["chat"]["mentions"] == [f"{CONTACT}@c.us"]
    assert sent["reactions"] == [{"phone": PHONE, "target": inbound["id"], "emoji": "👍"}]
    assert all(m["sends"] == 1 for m in sent["messages"])


async def test_media_that_cannot_be_had_fails_the_send_with_the_reason(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub, media_server: MediaServer
) -> None:
    sid = await new_session(redis, "msg_bad_media")
    await scan_latest_qr(stub, sim, sid, "15550012002")
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    # When the tenant sends media over the type's limit, from a missing URL, a missing upload, and quotes nothing
    for command in (
        send(sid, "big", CONTACT, type="image", media={"url": f"{media_server.url}/big.pdf"}),
        send(sid, "gone", CONTACT, type="document", media={"url": f"{media_server.url}/nothing.pdf"}),
        send(sid, "noup", CONTACT, type="document", media={"media_id": "med_" + "1" * 26}),
        send(sid, "noq", CONTACT, type="text", text="re", reply_to=f"false_{CONTACT}@c.us_NOSUCHMSG"),
    ):
        await enqueue_command(redis, command)
    # Then each is message.failed with a reason that says why, and nothing reached WhatsApp
    failed = await stub.wait_for(
        lambda: len(stub.select("message.failed", sid)) == 4 and stub.select("message.failed", sid), 30, "four failures"
    )
    reasons = {e["data"]["client_message_id"]: e["data"]["reason"] for e in failed}
    assert reasons["big"].startswith("media_too_large: ")
    assert reasons["gone"].startswith("media_fetch_failed: ") and "404" in reasons["gone"]
    assert reasons["noup"].startswith("media_not_found: ")
    assert reasons["noq"].startswith("send_failed: ") and "not found" in reasons["noq"]
    assert not stub.select("message.sent", sid)
    async with httpx.AsyncClient() as http:
        mine = (await http.get(sim.url + "control/sent", params={"phone": "15550012002"})).json()["messages"]
    assert mine == []


async def test_every_inbound_type_and_event_reaches_the_tenant(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    phone = "15550012003"
    await workspaces.create_workspace(redis, WorkspaceRecord(id="ws_test", name="calls off", reject_calls=True))
    sid = await new_session(redis, "msg_inbound")
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    sender = f"{CONTACT}@c.us"
    # When a contact sends a photo with a caption, a document WhatsApp's media server has already forgotten, a
    # location, a contact card, and a reply that mentions the account
    photo = await control(sim, "inbound", phone=phone, sender=sender, type="image", caption="broken lid", id="IMG1")
    await control(sim, "inbound", phone=phone, sender=sender, type="document", id="DOC1", media_gone=True)
    await control(
        sim, "inbound", phone=phone, sender=sender, type="location", id="LOC1", lat=-6.2, lng=106.8, loc="Shop"
    )
    await control(sim, "inbound", phone=phone, sender=sender, type="vcard", id="VCF1", body="BEGIN:VCARD\nEND:VCARD")
    await control(
        sim,
        "inbound",
        phone=phone,
        sender=sender,
        body="see above",
        id="RPL1",
        quoted=photo["id"],
        mentions=[f"{phone}@c.us"],
    )
    # Then each is one message.received with its parts, the photo's media pending at first
    received = await stub.wait_for(
        lambda: len(stub.select("message.received", sid)) == 5 and stub.select("message.received", sid), 20, "five"
    )
    by_id = {e["data"]["message_id"].split("_")[-1]: e["data"] for e in received}
    assert by_id["IMG1"]["kind"] == "image" and by_id["IMG1"]["caption"] == "broken lid" and by_id["IMG1"]["body"] == ""
    assert by_id["IMG1"]["media"]["status"] == "pending" and by_id["IMG1"]["media"]["mimetype"] == "image/png"
    assert by_id["LOC1"]["location"] == {"latitude": -6.2, "longitude": 106.8, "description": "Shop"}
    assert by_id["VCF1"]["kind"] == "vcard" and by_id["VCF1"]["body"].startswith("BEGIN:VCARD")
    assert by_id["RPL1"]["quoted_message_id"] == photo["id"] and by_id["RPL1"]["mentions"] == [f"{phone}@c.us"]
    # And message.media follows: the photo stored, byte for byte at its URL; the forgotten document failed
    media_events = await stub.wait_for(
        lambda: len(stub.select("message.media", sid)) == 2 and stub.select("message.media", sid), 30, "media"
    )
    media = {e["data"]["message_id"].split("_")[-1]: e["data"]["media"] for e in media_events}
    assert media["IMG1"]["status"] == "available" and media["IMG1"]["id"] == by_id["IMG1"]["media"]["id"]
    assert media["IMG1"]["sha256"] == hashlib.sha256(png()).hexdigest()
    async with httpx.AsyncClient() as http:
        assert (await http.get(media["IMG1"]["url"])).content == png()
    assert media["DOC1"]["status"] == "failed" and media["DOC1"]["error"].startswith("media_download_failed")

    # When the contact reacts, edits, deletes for everyone, types, a group changes and the contact calls
    await control(sim, "reaction", phone=phone, sender=sender, message_id=photo["id"], emoji="❤️")
    await control(sim, "edit", phone=phone, message_id=photo["id"], body="broken lid (edited)")
    await control(sim, "revoke", phone=phone, message_id=photo["id"])
    await control(sim, "presence", phone=phone, chat=sender, state="composing")
    await control(sim, "presence", phone=phone, chat=sender, state="available")
    await control(sim, "group", phone=phone, group=GROUP, action="leaver", participants=[sender])
    call = await control(sim, "call", phone=phone, sender=sender, video=True)
    # Then each is its event, and the call was rejected as the workspace asked
    for event_type in (
        "message.reaction",
        "message.edited",
        "message.revoked",
        "typing",
        "presence",
        "group.participants",
        "call.received",
    ):
        await stub.wait_for(lambda t=event_type: stub.select(t, sid), 20, event_type)
    assert stub.select("message.reaction", sid)[0]["data"]["emoji"] == "❤️"
    assert stub.select("message.reaction", sid)[0]["data"]["message_id"] == photo["id"]
    assert stub.select("message.edited", sid)[0]["data"]["body"] == "broken lid (edited)"
    assert stub.select("message.revoked", sid)[0]["data"] == {
        "message_id": photo["id"],
        "chat_id": sender,
        "by": "sender",
        "author": None,
    }
    assert stub.select("typing", sid)[0]["data"] == {"chat_id": sender, "state": "composing"}
    assert stub.select("presence", sid)[0]["data"] == {"chat_id": sender, "state": "available"}
    group = stub.select("group.participants", sid)[0]["data"]
    assert group == {"group_id": GROUP, "action": "leave", "participants": [sender], "author": None}
    received_call = stub.select("call.received", sid)[0]["data"]
    assert received_call["call_id"] == call["id"] and received_call["video"] and received_call["rejected"]
    async with httpx.AsyncClient() as http:
        calls = (await http.get(sim.url + "control/calls", params={"phone": phone})).json()["calls"]
    assert calls[0]["rejected"] is True


async def test_sends_are_paced_in_order_with_typing_and_the_page_actions_work(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub
) -> None:
    phone = "15550012004"
    # Given a workspace that paces sends 0.4 s apart and shows typing before each
    await workspaces.create_workspace(
        redis, WorkspaceRecord(id="ws_test", name="paced", send_gap_ms=400, send_jitter_ms=0, typing_before_send=True)
    )
    sid = await new_session(redis, "msg_paced")
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    # When four messages are queued at once for one chat
    for i in range(4):
        await enqueue_command(redis, send(sid, f"p{i}", CONTACT, type="text", text=f"paced {i}", reply_to=None))
    # Then they go out in order, at least the gap apart, each after the contact saw typing
    sent = await stub.wait_for(
        lambda: len(stub.select("message.sent", sid)) == 4 and stub.select("message.sent", sid), 30, "four sent"
    )
    assert [e["data"]["client_message_id"] for e in sent] == ["p0", "p1", "p2", "p3"]
    async with httpx.AsyncClient() as http:
        shown = (await http.get(sim.url + "control/presence_sent", params={"phone": phone})).json()["presence"]
        out = (await http.get(sim.url + "control/sent", params={"phone": phone})).json()["messages"]
    assert [p["state"] for p in shown].count("composing") >= 4
    # (WhatsApp's arrival times: each send starts after at least a second of typing, the typing's minimum)
    arrivals = [m["at"] for m in out]
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.8, arrivals
    # When the tenant marks the chat read, shows recording, deletes the first for everyone and edits the second
    first, second = sent[0]["data"]["message_id"], sent[1]["data"]["message_id"]
    await enqueue_command(redis, MarkReadCommand(session_id=sid, chat=f"{CONTACT}@c.us"))
    await enqueue_command(redis, TypingCommand(session_id=sid, chat=f"{CONTACT}@c.us", state="recording", seconds=2))
    await enqueue_command(redis, DeleteMessageCommand(session_id=sid, message_id="msg_p0", wa_message_id=first))
    await enqueue_command(
        redis, EditMessageCommand(session_id=sid, message_id="msg_p1", wa_message_id=second, text="fixed")
    )
    # Then WhatsApp saw each, and the tenant hears of the deletion and the edit
    await stub.wait_for(lambda: stub.select("message.revoked", sid), 20, "message.revoked")
    await stub.wait_for(lambda: stub.select("message.edited", sid), 20, "message.edited")
    assert stub.select("message.revoked", sid)[0]["data"]["message_id"] == first
    assert stub.select("message.edited", sid)[0]["data"] == {
        "message_id": second,
        "chat_id": f"{CONTACT}@c.us",
        "body": "fixed",
    }
    async with httpx.AsyncClient() as http:
        out = {
            m["id"]: m for m in (await http.get(sim.url + "control/sent", params={"phone": phone})).json()["messages"]
        }
        reads = (await http.get(sim.url + "control/reads", params={"phone": phone})).json()["chats"]
        shown = (await http.get(sim.url + "control/presence_sent", params={"phone": phone})).json()["presence"]
    assert out[first]["revoked"] is True and out[second]["edits"] == ["fixed"]
    assert reads == {f"{CONTACT}@c.us": 1}
    assert shown[-1]["state"] == "recording" and shown[-1]["duration"] == 2000
