"""The console end to end: the whole local system (API and ingest under uvicorn, a session worker driving
Chromium on the WhatsApp Web simulator), the operator in headless Chromium, the phone played by the
simulator's control API. Create a session in the page, its QR appears, the phone scans it, the page
says connected. `WAGW_UPDATE_SCREENSHOT=1` makes this run refresh docs/console.png.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import refresh_settings
from tests.integration.api.test_console import CHROMIUM, HAVE_CHROMIUM, SCREENSHOT
from wagw_local.system import Demo, LocalSystem, Ports, SystemOptions

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not HAVE_CHROMIUM, reason="no chromium-headless-shell")]

PHONE = "6281180164177"
FAST_WORKER = {
    "WAGW_LEASE_TTL_MS": "3000",
    "WAGW_HEARTBEAT_INTERVAL_MS": "500",
    "WAGW_LEASE_SAFETY_MARGIN_MS": "1000",
    "WAGW_CLAIM_INTERVAL_MS": "300",
}


@pytest.fixture(scope="module")
def system(aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    saved = dict(os.environ)
    options = SystemOptions(
        ports=Ports.free(workers=1),
        workers=1,
        workdir=tmp_path_factory.mktemp("console-system"),
        aws_endpoint_url=aws_endpoint,
        schedules=False,
        worker_env=FAST_WORKER,
    )
    running = LocalSystem(options)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        os.environ.clear()
        os.environ.update(saved)
        refresh_settings()


@pytest.fixture(scope="module")
def demo(system: LocalSystem) -> Demo:
    return system.create_demo_tenant("Console demo")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-quic"])
        yield launched
        await launched.close()


async def test_operator_creates_a_session_the_phone_scans_and_the_page_shows_connected(
    system: LocalSystem, demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    # Given an operator signed in to the console
    page = await browser.new_page(viewport={"width": 1180, "height": 760})
    await page.goto(f"{system.api_url}/console")
    await page.fill("#api-key", demo.api_key)
    await page.click("#login-button")
    await expect(page.locator("#whoami")).to_contain_text("Console demo")
    # When they create a session, a worker picks it up and its QR appears in the page
    await page.fill("#new-session-name", "shop front")
    await page.fill("#new-session-phone", PHONE)
    await page.click("#create-session")
    qr = page.locator("#qr-img")
    await expect(qr).to_be_visible(timeout=45_000)
    code = await qr.get_attribute("data-qr")
    assert code
    # And when the phone scans that QR
    async with httpx.AsyncClient(timeout=10) as http:
        scanned = await http.post(f"{system.simulator_url}/control/scan", json={"qr": code, "phone": PHONE})
    assert scanned.status_code == 200, scanned.text
    # Then the page flips to connected, with the worker that drives it
    await expect(page.locator("#connected")).to_be_visible(timeout=30_000)
    await expect(page.locator("#detail-status")).to_have_text("ready")
    await expect(page.locator("#detail-owner")).to_have_text("worker-a")
    await expect(page.locator("#sessions tr .badge").first).to_have_text("ready", timeout=10_000)
    # docs/console.png is refreshed only on request, so test runs leave the tree clean
    target = SCREENSHOT if os.environ.get("WAGW_UPDATE_SCREENSHOT") == "1" else tmp_path / "console.png"
    await page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
