"""The simulator's page weight (`POST /control/page {"weight": "heavy"}`): a logged-in page that holds a JS heap,
a DOM and an IndexedDB of the stated size, as WhatsApp Web does, and behaves towards wa-js callers exactly as the
light page does (the weight adds bulk, never behaviour: docs/benchmarks.md, Sessions, "Page weight")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from session_workers.simulator import SimulatorServer
from session_workers.simulator.server import PAGE_WEIGHTS
from tests.integration.session_workers.conftest import control, eventually
from tests.integration.session_workers.test_wa_js_contract import RECORDER_JS

pytestmark = pytest.mark.browser

CONTACT = "15550008802"
MIB = 1 << 20


@pytest.fixture
async def contexts(browser: Browser, sim: SimulatorServer) -> AsyncIterator[list[BrowserContext]]:
    """A context per page (pages of one context share their storage: a second one would restore the first's)."""
    opened: list[BrowserContext] = []
    try:
        yield opened
    finally:
        for context in opened:
            await context.close()
        await control(sim, "page", weight="light")


async def linked(
    browser: Browser, contexts: list[BrowserContext], sim: SimulatorServer, weight: str, phone: str
) -> Page:
    await control(sim, "page", weight=weight)
    context = await browser.new_context()
    contexts.append(context)
    await context.add_init_script(script=RECORDER_JS)
    page = await context.new_page()
    await page.goto(sim.url)
    await page.wait_for_function("window.WPP && WPP.conn.getStreamData().mode === 'QR'")
    code = await page.evaluate("async () => (await WPP.conn.getAuthCode()).fullCode")
    await control(sim, "scan", qr=code, phone=phone)
    await page.wait_for_function("WPP.conn.getStreamData().mode === 'MAIN'", timeout=60_000)
    return page


async def measure(page: Page) -> dict[str, float]:
    """The page's JS heap after a full GC (CDP), its elements, and its model-storage rows as JSON bytes."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("HeapProfiler.collectGarbage")
    heap = await cdp.send("Runtime.getHeapUsage")
    elements = await page.evaluate("document.getElementsByTagName('*').length")
    stored = await page.evaluate(
        """async () => {
          const db = await new Promise((ok, no) => {
            const r = indexedDB.open('model-storage'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
          });
          const rows = await new Promise((ok, no) => {
            const r = db.transaction('message').objectStore('message').getAll();
            r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
          });
          db.close();
          return rows.reduce((n, row) => n + JSON.stringify(row).length, 0);
        }"""
    )
    return {"heap": float(heap["usedSize"]), "elements": float(elements), "stored": float(stored)}


async def test_a_heavy_page_holds_the_stated_heap_dom_and_indexeddb(
    browser: Browser, contexts: list[BrowserContext], sim: SimulatorServer
) -> None:
    # Given a light page and a heavy page, each linked and loaded
    light = await measure(await linked(browser, contexts, sim, "light", "15550008801"))
    heavy = await measure(await linked(browser, contexts, sim, "heavy", "15550008803"))
    stated = PAGE_WEIGHTS["heavy"]
    # Then the heavy page's heap is larger by the stated size (within -20 % / +25 %: V8's own bookkeeping)
    added = (heavy["heap"] - light["heap"]) / MIB
    assert 0.8 * stated["heap_mb"] <= added <= 1.25 * stated["heap_mb"], f"heap +{added:.0f} MiB"
    # And its DOM holds the stated number of elements more (the chat list)
    assert abs(heavy["elements"] - light["elements"] - stated["dom_nodes"]) <= 5
    # And its IndexedDB holds the stated size of messages (the light page its own 256 KiB)
    assert stated["storage_kb"] * 1024 <= heavy["stored"] <= stated["storage_kb"] * 1024 + 4096
    assert light["stored"] <= PAGE_WEIGHTS["light"]["storage_kb"] * 1024 + 4096


async def script(page: Page, sim: SimulatorServer, phone: str) -> dict[str, Any]:
    """The same wa-js calls and WhatsApp events on a linked page; what the caller sees (event names in order with
    their payload's keys, the results' keys and values that do not depend on the account)."""
    await control(sim, "contact", phone=phone, contact=CONTACT)
    sent = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'hello', {{markIsRead: false}})")
    await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="hi back", id="W1", encrypted=True)
    await eventually(
        lambda: page.evaluate("() => window.__log.filter((e) => e.name === 'chat.new_message').length >= 3"),
        what="the sent message and the inbound one twice",
    )
    found = await page.evaluate(f"async () => (await WPP.chat.getMessageById('{sent['id']}')).body")
    missing = await page.evaluate(
        "() => WPP.chat.getMessageById('false_1@c.us_NOPE').then(() => null, (e) => e.code || e.message)"
    )
    linked_log = await page.evaluate("() => window.__log")
    # a reload restores the page from its storage (the recorder starts a new log)
    await page.reload()
    await page.wait_for_function("window.WPP && WPP.conn.getStreamData().mode === 'MAIN'", timeout=60_000)
    restored_log = await page.evaluate("() => window.__log")
    return {
        "events": [
            (e["name"], sorted(e["payload"]) if isinstance(e["payload"], dict) else type(e["payload"]).__name__)
            for e in [*linked_log, {"name": "(reload)", "payload": None}, *restored_log]
        ],
        "sent": (sorted(sent), sent["ack"], sent["sendMsgResult"]),
        "found": found,
        "missing": missing,
        "state": await page.evaluate(
            "() => [WPP.conn.isAuthenticated(), WPP.conn.isMainReady(), WPP.conn.getStreamData().mode, WPP.isFullReady]"
        ),
    }


async def test_the_weight_changes_no_wa_js_behaviour(
    browser: Browser, contexts: list[BrowserContext], sim: SimulatorServer
) -> None:
    # Given the same calls and events on a light and on a heavy page
    light = await script(await linked(browser, contexts, sim, "light", "15550008811"), sim, "15550008811")
    heavy = await script(await linked(browser, contexts, sim, "heavy", "15550008812"), sim, "15550008812")
    # Then wa-js callers see the same events in the same order with the same shapes, and the same results
    assert heavy == light
    # (and the script did exercise them: a send found again, a missing message refused, a restore to MAIN)
    assert light["found"] == "hello" and light["missing"] == "msg_not_found"
    assert light["state"] == [True, True, "MAIN", True]
