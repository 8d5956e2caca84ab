"""The simulator's storage model, stated against the page alone (no worker): what a linked WhatsApp Web page keeps
in IndexedDB and localStorage, and that it fails visibly (a reason, and a QR) when any of it is lost or altered.

These are the behaviours the `context` strategy's capture and restore must preserve (docs/session-workers.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from session_workers.simulator import SimulatorServer
from tests.integration.session_workers.conftest import control, eventually, sim_state

pytestmark = pytest.mark.browser


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    fresh = await browser.new_context()
    yield fresh
    await fresh.close()


async def mode(page: Page) -> str:
    return str(await page.evaluate("WPP.conn.getStreamData().mode"))


async def linked(context: BrowserContext, sim: SimulatorServer, phone: str) -> Page:
    page = await context.new_page()
    await page.goto(sim.url)
    await page.wait_for_function("window.WPP && WPP.conn.getStreamData().mode === 'QR'")
    code = await page.evaluate("async () => (await WPP.conn.getAuthCode()).fullCode")
    await control(sim, "scan", qr=code, phone=phone)
    await page.wait_for_function("WPP.conn.getStreamData().mode === 'MAIN'")
    return page


async def idb(page: Page, script: str) -> Any:
    """Run `script` (a function body with `db(name)` and `tx(db, store, mode)` in scope) in the page."""
    return await page.evaluate(
        """async (script) => {
          const req = (r) => new Promise((ok, no) => {
            r.onsuccess = () => ok(r.result);
            r.onerror = () => no(r.error);
          });
          const db = (name) => req(indexedDB.open(name));
          return await (new Function('db', 'req', 'return (async () => {' + script + '})()'))(db, req);
        }""",
        script,
    )


async def reload_fails_with(page: Page, sim: SimulatorServer, reason: str) -> None:
    before = (await sim_state(sim))["stats"]["restore_failures"]
    await page.reload()

    async def failed() -> bool:
        return bool((await sim_state(sim))["stats"]["restore_failures"] > before)

    await eventually(failed, what="a restore failure")
    reasons = [c["restore_failure"] for c in (await sim_state(sim))["clients"] if c["restore_failure"]]
    assert any(reason in r for r in reasons), reasons
    await page.wait_for_function("WPP.conn.getStreamData().mode === 'QR'")


async def test_a_linked_page_keeps_its_login_under_a_non_extractable_key_and_logs_in_again(
    context: BrowserContext, sim: SimulatorServer
) -> None:
    page = await linked(context, sim, "15550007001")
    # Then the login token is kept only sealed under a non-extractable AES-GCM key made at link time
    kept = await idb(
        page,
        """const d = await db('wawc'); const auth = await req(d.transaction('user').objectStore('user').get('auth'));
        return {ext: auth.secret_key.extractable, alg: auth.secret_key.algorithm.name, usages: auth.secret_key.usages,
                hmac: auth.key.extractable, sealed: auth.sealed_token.data instanceof ArrayBuffer,
                bundle: localStorage.getItem('WASecretBundle'), linked: auth.linked_at instanceof Date,
                stores: Array.from((await db('model-storage')).objectStoreNames)};""",
    )
    assert kept["ext"] is False and kept["hmac"] is False and kept["alg"] == "AES-GCM"
    assert kept["usages"] == ["encrypt", "decrypt"] and kept["sealed"] and kept["linked"]
    assert "token" not in kept["bundle"] and kept["stores"] == ["chat", "contact", "message", "meta"]
    # When the page loads again, it decrypts the token with that key and logs in without a QR
    before = (await sim_state(sim))["stats"]
    await page.reload()
    await page.wait_for_function("window.WPP && WPP.conn.getStreamData().mode === 'MAIN'")
    after = (await sim_state(sim))["stats"]
    assert after["logins"] == before["logins"] + 1 and after["restore_failures"] == before["restore_failures"]


async def test_a_replaced_key_fails_visibly(context: BrowserContext, sim: SimulatorServer) -> None:
    page = await linked(context, sim, "15550007002")
    # When the stored key is replaced by another non-extractable AES-GCM key (a wrong key)
    await idb(
        page,
        """const d = await db('wawc'); const s = d.transaction('user').objectStore('user');
        const auth = await req(s.get('auth'));
        const aes = {name: 'AES-GCM', length: 256};
        auth.secret_key = await crypto.subtle.generateKey(aes, false, ['encrypt', 'decrypt']);
        await req(d.transaction('user', 'readwrite').objectStore('user').put(auth, 'auth'));""",
    )
    # Then the next load cannot decrypt its token, says so, and shows a QR
    await reload_fails_with(page, sim, "the sealed token does not decrypt with the stored key")


async def test_a_lost_blob_or_record_fails_visibly(context: BrowserContext, sim: SimulatorServer) -> None:
    page = await linked(context, sim, "15550007003")
    # When a Blob comes back as {} (what a storage-state round trip does to it)
    await idb(
        page,
        """const d = await db('wawc'); const v = await req(d.transaction('user').objectStore('user').get('values'));
        v.blob = {}; await req(d.transaction('user', 'readwrite').objectStore('user').put(v, 'values'));""",
    )
    await reload_fails_with(page, sim, "value of type blob lost or altered")
    # And when a linked page loses one message record of its model-storage database
    page = await linked(context, sim, "15550007004")
    await idb(
        page,
        """const d = await db('model-storage');
        const s = d.transaction('message', 'readwrite').objectStore('message');
        const first = await req(s.openCursor()); await req(first.delete());""",
    )
    await reload_fails_with(page, sim, "model-storage.message holds")


async def test_the_database_size_is_a_page_setting(context: BrowserContext, sim: SimulatorServer) -> None:
    await control(sim, "page", storage_kb=64)
    try:
        page = await linked(context, sim, "15550007005")
        size = await idb(
            page,
            """const d = await db('model-storage');
            const rows = await req(d.transaction('message').objectStore('message').getAll());
            return rows.reduce((n, r) => n + JSON.stringify(r).length, 0);""",
        )
        assert 64 * 1024 <= size < 65 * 1024
    finally:
        await control(sim, "page", storage_kb=256)
