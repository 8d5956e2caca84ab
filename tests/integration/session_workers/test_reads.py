"""Reads through the owning worker, over the API app (in process) against a real worker on the simulator: number
checks (cached, rate-limited), chats with unread counts, a chat's history paged backwards, groups and members;
and a read answered while the command loop is busy with a slow send."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from functions.api.app import create_app
from session_workers.browser import SharedBrowserHost
from session_workers.inbound import media_id_for
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared.commands import SendMessageCommand, SendTextCommand, enqueue_command
from shared.events import SessionStatus
from shared.outgoing import OutgoingContent
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import now_ms
from tests.fixtures.media import png
from tests.integration.api.conftest import Tenant, make_tenant
from tests.integration.session_workers.conftest import control, new_session, scan_latest_qr

pytestmark = pytest.mark.browser
PHONE = "15550013001"
CUSTOMER = "15550013002"
LID_CONTACT = "15550013003"
LID = "130013001300130"
HIDDEN_LID = "130013001300199"  # a group member whose number WhatsApp does not reveal
NOT_ON_WHATSAPP = "15550013009"
GROUP = "120363000000001301@g.us"


@pytest.fixture(scope="module")
async def host(sim: SimulatorServer) -> AsyncIterator[SharedBrowserHost]:
    # The host hands its settings to each page's driver: they must name the simulator.
    settings = get_settings().model_copy(update={"auth_strategy": "context", "whatsapp_url": sim.url})
    shared = SharedBrowserHost(settings)
    await shared.start()
    try:
        yield shared
    finally:
        await shared.close()


@pytest.fixture
async def worker(
    worker_env: pytest.MonkeyPatch, media_bucket: str, host: SharedBrowserHost, workers: list[Worker]
) -> Worker:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "context")
    worker_env.setenv("WAGW_CONTACT_CHECKS_BURST", "3")
    worker_env.setenv("WAGW_ALLOW_LOCAL_WEBHOOKS", "true")  # the slow media host is on 127.0.0.1 (dev only)
    # This module runs the API in the worker's event loop: on 2 busy cores a stall of 0.8 s (the suite's lease
    # margin) stopped the session mid-read. Nothing here is about lease timing.
    worker_env.setenv("WAGW_LEASE_TTL_MS", "4000")
    worker_env.setenv("WAGW_LEASE_SAFETY_MARGIN_MS", "2000")
    get_settings.cache_clear()
    started = Worker(get_settings(), host=host, health_port=None)
    workers.append(started)
    await started.start()
    return started


@pytest.fixture
def slow_media() -> Iterator[str]:
    """A tenant's media host that takes 6 s to answer: a send by URL holds the command loop that long."""

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(6.0)
            body = png()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.png"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def api(redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30) as http:
        yield http


async def linked_session(redis: Redis, stub: IngestStub, sim: SimulatorServer, tenant: Tenant, name: str) -> str:
    """A session of the tenant's workspace, scanned and ready; its hash says so as ingest would record it."""
    sid = await new_session(redis, name, workspace_id=tenant.workspace_id)
    await scan_latest_qr(stub, sim, sid, PHONE)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 20, "ready")
    record = await sessions.get_session(redis, sid)
    assert record is not None and record.owner
    await sessions.apply_status(redis, record, SessionStatus.READY, reason=None, occurred_at_ms=now_ms(), phone=PHONE)
    return sid


async def get(api: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> httpx.Response:
    return await api.get(path, params=params, headers=tenant.headers)


async def test_numbers_chats_history_and_groups_come_from_the_page(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant("reads")
    sid = await linked_session(redis, stub, sim, tenant, "reads_main")
    # Given a business contact WhatsApp addresses by LID, a customer who wrote three texts and a photo, our reply,
    # and a group with an admin, a member and a member known only by LID
    await control(sim, "contact", phone=PHONE, contact=LID_CONTACT, lid=LID, business=True)
    await control(sim, "contact", phone=PHONE, contact=NOT_ON_WHATSAPP, on_whatsapp=False)
    await control(sim, "contact", phone=PHONE, contact="15550013098", lid=HIDDEN_LID, pn_known=False)
    for n in range(3):
        await control(sim, "inbound", phone=PHONE, sender=CUSTOMER, body=f"text {n}", id=f"READIN{n}")
    await control(sim, "inbound", phone=PHONE, sender=CUSTOMER, type="image", caption="broken", id="READIMG")
    await stub.wait_for(lambda: len(stub.select("message.received", sid)) == 4, 20, "four messages")
    reply = SendTextCommand(session_id=sid, message_id="msg_r1", client_message_id="r1", to=CUSTOMER, text="sorry!")
    await enqueue_command(redis, reply)
    await stub.wait_for(lambda: stub.select("message.sent", sid), 20, "our reply")
    await control(
        sim,
        "groups",
        phone=PHONE,
        group=GROUP,
        subject="Wholesale",
        participants=[CUSTOMER, "15550013098"],
        admins=[f"{PHONE}@c.us"],
    )

    # When the tenant checks three numbers, then one of them again
    on_whatsapp = (await get(api, tenant, f"/v1/sessions/{sid}/contacts/{LID_CONTACT}")).json()
    missing = (await get(api, tenant, f"/v1/sessions/{sid}/contacts/{NOT_ON_WHATSAPP}")).json()
    plain = (await get(api, tenant, f"/v1/sessions/{sid}/contacts/{CUSTOMER}")).json()
    again = (await get(api, tenant, f"/v1/sessions/{sid}/contacts/{LID_CONTACT}")).json()
    # Then WhatsApp's answers come back (queryWidExists: null for a number not on WhatsApp), the repeat from cache
    assert on_whatsapp == {
        "phone": LID_CONTACT,
        "on_whatsapp": True,
        "chat_id": f"{LID_CONTACT}@c.us",
        "lid": f"{LID}@lid",
        "business": True,
        "verified_name": None,
        "cached": False,
    }
    assert missing["on_whatsapp"] is False and missing["chat_id"] is None
    assert plain["on_whatsapp"] is True and plain["lid"] is None and plain["business"] is False
    assert again == {**on_whatsapp, "cached": True}
    # And a fourth new number is past the session's burst of three: 429 with Retry-After, and nothing asked
    limited = await get(api, tenant, f"/v1/sessions/{sid}/contacts/15550013077")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1

    # When it lists the chats
    chats = (await get(api, tenant, f"/v1/sessions/{sid}/chats")).json()
    by_id = {c["id"]: c for c in chats["items"]}
    # Then the customer's chat has its unread count and our reply as last message, and the group is listed
    customer = by_id[f"{CUSTOMER}@c.us"]
    assert customer["unread_count"] == 4 and customer["group"] is False
    assert customer["last_message"]["body"] == "sorry!" and customer["last_message"]["from_me"] is True
    assert by_id[GROUP]["group"] is True and by_id[GROUP]["name"] == "Wholesale"

    # When it reads the customer's history two at a time, backwards
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = await get(api, tenant, f"/v1/sessions/{sid}/chats/{CUSTOMER}/messages", limit=2, **cursor_of(cursor))
        assert page.status_code == 200, page.text
        pages.append(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    # Then it gets every message once, newest first, the photo with the media id GET /v1/media resolves
    history = [m for p in pages for m in p]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m["body"] or m["caption"] for m in history] == ["sorry!", "broken", "text 2", "text 1", "text 0"]
    photo = history[1]
    assert photo["kind"] == "image" and photo["media"]["id"] == media_id_for(sid, photo["id"])
    assert photo["media"]["mimetype"] == "image/png"

    # When it lists the groups and the group's members
    groups = (await get(api, tenant, f"/v1/sessions/{sid}/groups")).json()
    members = (await get(api, tenant, f"/v1/sessions/{sid}/groups/{GROUP}/participants", limit=2)).json()
    rest = await get(api, tenant, f"/v1/sessions/{sid}/groups/{GROUP}/participants", cursor=members["next_cursor"])
    # Then the group has three members: us as admin, the customer, and a LID member without a phone number
    assert groups["items"] == [
        {
            "id": GROUP,
            "name": "Wholesale",
            "participants": 3,
            "unread_count": 0,
            "timestamp": groups["items"][0]["timestamp"],
        }
    ]
    everyone = {m["id"]: m for m in members["items"] + rest.json()["items"]}
    assert everyone[f"{PHONE}@c.us"]["admin"] is True
    assert everyone[f"{CUSTOMER}@c.us"] == {
        "id": f"{CUSTOMER}@c.us",
        "phone": CUSTOMER,
        "admin": False,
        "super_admin": False,
    }
    assert everyone[f"{HIDDEN_LID}@lid"]["phone"] is None

    # And what WhatsApp does not know is 404, what is not a group too
    unknown = await get(api, tenant, f"/v1/sessions/{sid}/chats/15550013055/messages")
    not_a_group = await get(api, tenant, f"/v1/sessions/{sid}/groups/120363000000009999@g.us/participants")
    assert unknown.status_code == 404 and not_a_group.status_code == 404


def cursor_of(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


async def test_a_read_is_answered_while_the_command_loop_waits_on_a_slow_send(
    redis: Redis, worker: Worker, sim: SimulatorServer, stub: IngestStub, api: httpx.AsyncClient, slow_media: str
) -> None:
    tenant = await make_tenant("busy")
    sid = await linked_session(redis, stub, sim, tenant, "reads_busy")
    # Given a send whose media host takes 6 s to answer, holding the session's command loop
    content = OutgoingContent.model_validate({"type": "image", "media": {"url": slow_media}})
    send = SendMessageCommand(session_id=sid, message_id="msg_s", client_message_id="s", to=CUSTOMER, content=content)
    await enqueue_command(redis, send)
    await asyncio.sleep(0.5)
    # When the tenant lists the chats meanwhile
    started = time.monotonic()
    chats = await get(api, tenant, f"/v1/sessions/{sid}/chats")
    took = time.monotonic() - started
    # Then the answer comes before the send is done
    assert chats.status_code == 200, chats.text
    assert took < 4.0 and not stub.select("message.sent", sid)
