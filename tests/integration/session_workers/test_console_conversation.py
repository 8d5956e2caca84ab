"""The console's conversation view in headless Chromium: the API under uvicorn, a real worker on the simulator,
media in LocalStack S3. A customer's texts and photo show with the photo previewed through GET /v1/media/{id};
the operator answers with text and with a file uploaded through POST /v1/media and sent by its media id.
`WAGW_UPDATE_SCREENSHOT=1` refreshes docs/console-conversation.png."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from functions.api.app import create_app
from session_workers.browser import SharedBrowserHost
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.simulator.samples import png
from session_workers.worker import Worker
from shared.settings import get_settings
from shared.store import messages
from tests.integration.api.conftest import ServedApp, make_tenant
from tests.integration.session_workers.conftest import control
from tests.integration.session_workers.test_reads import linked_session

pytestmark = pytest.mark.browser
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "console-conversation.png"
PHONE = "15550013001"  # test_reads.linked_session links this phone
CUSTOMER = "15550015002"
PDF = b"%PDF-1.4\n% console upload\n" + bytes(range(256)) * 8


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
    worker_env.setenv("WAGW_SEND_GAP_MS", "0")
    worker_env.setenv("WAGW_SEND_JITTER_MS", "0")
    get_settings.cache_clear()
    started = Worker(get_settings(), host=host, health_port=None)
    workers.append(started)
    await started.start()
    return started


@pytest.fixture
def served(worker: Worker) -> Iterator[ServedApp]:
    app = ServedApp(create_app())
    try:
        yield app
    finally:
        app.stop()


async def test_the_operator_reads_a_conversation_and_answers_with_text_and_a_file(
    redis: Redis,
    worker: Worker,
    sim: SimulatorServer,
    stub: IngestStub,
    served: ServedApp,
    browser: Browser,
    tmp_path: Path,
) -> None:
    # Given a ready session whose customer wrote twice and sent a photo of a broken product
    tenant = await make_tenant("Console shop")
    sid = await linked_session(redis, stub, sim, tenant, "console_conv")
    await control(sim, "inbound", phone=PHONE, sender=CUSTOMER, body="Hello, my order arrived broken")
    photo = base64.b64encode(png(200, 120, (200, 90, 40))).decode()
    await control(sim, "inbound", phone=PHONE, sender=CUSTOMER, type="image", caption="see the photo", media_b64=photo)
    await control(sim, "inbound", phone=PHONE, sender=CUSTOMER, body="Can you replace it?")
    await stub.wait_for(lambda: len(stub.select("message.media", sid)) == 1, 20, "the photo stored")
    # When the operator opens the session in the console and picks the customer's chat
    page = await browser.new_page(viewport={"width": 1180, "height": 900})
    await page.goto(f"{served.url}/console")
    await page.fill("#api-key", tenant.key)
    await page.click("#login-button")
    await page.locator(f'tr[data-session-id="{sid}"] button').click()
    chat = page.locator(f'#chats li[data-chat-id="{CUSTOMER}@c.us"]')
    await expect(chat).to_contain_text("3", timeout=15_000)  # unread
    await chat.click()
    # Then the messages show oldest first, the photo previewed from the media bucket
    await expect(page.locator("#messages .msg .text")).to_have_text(
        ["Hello, my order arrived broken", "see the photo", "Can you replace it?"], timeout=15_000
    )
    preview = page.locator("#messages img.preview")
    await expect(preview).to_be_visible()
    assert await preview.evaluate("(img) => img.complete && img.naturalWidth > 0")
    # When they answer with a text, then with a PDF
    await page.fill("#send-text", "Sorry! Sending a replacement today.")
    await page.click("#send-button")
    await expect(page.locator("#messages .msg.mine .text")).to_have_text(
        ["Sorry! Sending a replacement today."], timeout=15_000
    )
    pdf = tmp_path / "label.pdf"
    pdf.write_bytes(PDF)
    await page.set_input_files("#send-file", str(pdf))
    await page.fill("#send-text", "the return label")
    await page.click("#send-button")
    # Then WhatsApp got both, the file byte for byte, and the page shows the document
    await expect(page.locator("#messages .msg.mine")).to_have_count(2, timeout=20_000)
    # (as ingest records a sent message: WhatsApp's id -> our message, whose content names the upload)
    sent_doc = await stub.wait_for(
        lambda: [e for e in stub.select("message.sent", sid) if e["data"]["kind"] == "document"], 20, "sent"
    )
    await messages.advance_status(
        redis,
        sid,
        status=messages.MessageStatus.SENT,
        message_id=sent_doc[0]["data"]["gateway_message_id"],
        wa_message_id=sent_doc[0]["data"]["message_id"],
    )
    download = page.locator("#messages .msg.mine .media a")
    await expect(download).to_have_text("⬇ document", timeout=10_000)  # the upload, through GET /v1/media
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(str(await download.get_attribute("href")))).content == PDF
    async with httpx.AsyncClient(timeout=10) as http:
        sent = (await http.get(sim.url + "control/sent", params={"phone": PHONE})).json()["messages"]
    document = next(m for m in sent if m["type"] == "document")
    assert document["media"]["sha256"] == hashlib.sha256(PDF).hexdigest() and document["sends"] == 1
    assert [m["body"] for m in sent if m["type"] == "chat"] == ["Sorry! Sending a replacement today."]
    shot = SCREENSHOT if os.environ.get("WAGW_UPDATE_SCREENSHOT") == "1" else tmp_path / "conversation.png"
    await page.locator("#conversation-card").screenshot(path=str(shot))
    await page.close()
