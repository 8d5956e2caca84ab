"""The console in real headless Chromium against the app under uvicorn and real Redis.

The worker's side is played the way ingest applies worker events to the session hash
(shared.store.sessions.set_qr / apply_status), so the page is driven by exactly what it polls: this is
where QR rotation is checked (the simulator rotates every 20 s). test_console_e2e.py drives the same page
through a real worker and the simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from redis.asyncio import Redis

from shared.events import SessionStatus
from shared.store import sessions
from shared.store.records import now_ms
from tests.conftest import Queues
from tests.integration.api.conftest import ServedApp, Tenant
from tests.integration.api.test_deliveries import dead_letter

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "console.png"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium-headless-shell is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-quic"])
        yield launched
        await launched.close()


async def signed_in(browser: Browser, served: ServedApp, tenant: Tenant) -> Page:
    page = await browser.new_page(viewport={"width": 1180, "height": 820})
    await page.goto(f"{served.url}/console")
    await page.fill("#api-key", tenant.key)
    await page.click("#login-button")
    await expect(page.locator("#app")).to_be_visible()
    return page


async def test_qr_follows_rotation_and_turns_connected_when_scanned(
    browser: Browser, served: ServedApp, tenant: Tenant, redis: Redis
) -> None:
    # Given a signed-in operator with one older session
    page = await signed_in(browser, served, tenant)
    await expect(page.locator("#whoami")).to_contain_text("acme")
    await page.fill("#new-session-name", "sales")
    await page.click("#create-session")
    await page.click("#close-detail")
    # When they create a session, its QR view opens and waits for the worker
    await page.fill("#new-session-name", "support")
    await page.fill("#new-session-phone", "6281180164100")
    await page.click("#create-session")
    await expect(page.locator("#detail-status")).to_have_text("starting")
    await expect(page.locator("#qr-waiting")).to_be_visible()
    session_id = (await page.locator("#detail-id").text_content()) or ""
    assert session_id.startswith("ses_")
    # And when the worker's QR arrives, the page shows it; when it rotates, the page follows
    expires = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    await sessions.set_qr(redis, session_id, "2@first-qr,abc,def", expires, occurred_at_ms=now_ms())
    qr = page.locator("#qr-img")
    await expect(qr).to_have_attribute("data-qr", "2@first-qr,abc,def")
    await expect(page.locator("#detail-status")).to_have_text("qr")
    await sessions.set_qr(redis, session_id, "2@second-qr,ghi,jkl", expires, occurred_at_ms=now_ms() + 1)
    await expect(qr).to_have_attribute("data-qr", "2@second-qr,ghi,jkl")
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 100")
    # When the phone scans it (ingest applies the worker's `ready`)
    record = await sessions.get_session(redis, session_id)
    assert record is not None
    await sessions.apply_status(redis, record, SessionStatus.READY, reason=None, occurred_at_ms=now_ms() + 2)
    # Then the page flips to connected, and the list shows it ready
    await expect(page.locator("#connected")).to_be_visible()
    await expect(qr).to_be_hidden()
    await expect(page.locator("#detail-status")).to_have_text("ready")
    await expect(page.locator(f'#sessions tr[data-session-id="{session_id}"] .badge')).to_have_text("ready")


async def test_pairing_code_view(browser: Browser, served: ServedApp, tenant: Tenant, redis: Redis) -> None:
    page = await signed_in(browser, served, tenant)
    await page.fill("#new-session-name", "by code")
    await page.fill("#new-session-phone", "6281180164101")
    await page.click("#create-session")
    await expect(page.locator("#detail-status")).to_have_text("starting")
    session_id = (await page.locator("#detail-id").text_content()) or ""
    # When the operator asks for a pairing code and the worker reports one
    await page.click("#request-pairing")
    await expect(page.locator("#error")).to_have_text("")
    await sessions.set_pairing_code(redis, session_id, "K7QX-2M4P", occurred_at_ms=now_ms())
    # Then the page shows it
    await expect(page.locator("#pairing-code")).to_have_text("K7QX-2M4P")
    await expect(page.locator("#detail-status")).to_have_text("pairing")


async def test_endpoints_and_failed_deliveries_with_retry(
    browser: Browser, served: ServedApp, tenant: Tenant, redis: Redis, queues: Queues
) -> None:
    page = await signed_in(browser, served, tenant)
    # Webhook endpoints: adding one shows its secret once and lists it
    await page.click('header nav button[data-view="endpoints"]')
    await page.fill("#endpoint-url", "https://hooks.example.com/wa")
    await page.fill("#endpoint-types", "message.received, session.status")
    await page.click("#new-endpoint button[type=submit]")
    await expect(page.locator("#endpoint-secret")).to_contain_text("whsec_")
    row = page.locator("#endpoints tr")
    await expect(row).to_have_count(1)
    endpoint_id = await row.get_attribute("data-endpoint-id")
    assert endpoint_id
    # Failed deliveries: a dead letter is listed, and Retry sends it again
    delivery_id = await dead_letter(redis, tenant, endpoint_id, 3, datetime.now(UTC))
    await page.click('header nav button[data-view="deliveries"]')
    dead = page.locator(f'#dead-letters tr[data-delivery-id="{delivery_id}"]')
    await expect(dead).to_contain_text("http_500 (HTTP 500)")
    await dead.get_by_role("button", name="Retry").click()
    await expect(page.locator("#dead-letters tr")).to_have_count(0)
    await expect(page.locator("#error")).to_have_text("")
