"""The `context` strategy's storage watch (js/storage_watch.js), on real Chromium: a save may skip the capture only
while the page's storage surely did not change since the saved archive. Every way of writing marks the page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from session_workers.browser import ContextSession, SharedBrowserHost, parse_context_archive
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from tests.integration.session_workers.conftest import (
    control,
    new_session,
    scan_latest_qr,
    serve_origin,
    start_context_worker,
)

pytestmark = pytest.mark.browser

ORIGIN = "https://watch.wagw.test"

SETUP_JS = """async () => {
  await new Promise((resolve, reject) => {
    const open = indexedDB.open('app', 1);
    open.onupgradeneeded = () => {
      const store = open.result.createObjectStore('rows');
      store.createIndex('by_n', 'n');
    };
    open.onsuccess = () => {
      const tx = open.result.transaction('rows', 'readwrite');
      for (let i = 0; i < 5; i++) tx.objectStore('rows').put({ n: i }, 'row' + i);
      tx.oncomplete = () => { open.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  });
  localStorage.setItem('kept', 'yes');
  return true;
}"""

# Each write the page might do, as the page does it (a finished transaction: committed before the check); in this
# order, so that the cursors still find records.
IDB = """(fn) => new Promise((resolve, reject) => {
  const open = indexedDB.open('app');
  open.onsuccess = () => {
    const tx = open.result.transaction('rows', 'readwrite');
    fn(tx.objectStore('rows'));
    tx.oncomplete = () => { open.result.close(); resolve(true); };
    tx.onerror = () => reject(tx.error);
  };
})"""
WRITES = {
    "put": f"() => ({IDB})((s) => s.put({{ n: 9 }}, 'row9'))",
    "add": f"() => ({IDB})((s) => s.add({{ n: 10 }}, 'row10'))",
    "cursor update": f"() => ({IDB})((s) => {{ s.openCursor().onsuccess = (e) => {{ const c = e.target.result; "
    "if (c) { c.update({ n: 99 }); } }; })",
    "index cursor delete": f"() => ({IDB})((s) => {{ s.index('by_n').openCursor().onsuccess = (e) => {{ "
    "const c = e.target.result; if (c) { c.delete(); } }; })",
    "delete": f"() => ({IDB})((s) => s.delete('row0'))",
    "clear": f"() => ({IDB})((s) => s.clear())",
    "new database": """() => new Promise((resolve) => {
      const open = indexedDB.open('other', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('s');
      open.onsuccess = () => { open.result.close(); resolve(true); };
    })""",
    "delete database": """() => new Promise((resolve) => {
      const r = indexedDB.deleteDatabase('other'); r.onsuccess = r.onerror = () => resolve(true);
    })""",
    "localStorage.setItem": "() => { localStorage.setItem('k', String(Math.random())); return true; }",
    "localStorage property assignment": "() => { localStorage.assigned = String(Math.random()); return true; }",
    "localStorage property delete": "() => { delete localStorage.assigned; return true; }",
    "localStorage.removeItem": "() => { localStorage.removeItem('k'); return true; }",
    "localStorage.clear": "() => { localStorage.clear(); return true; }",
    "cookie": "() => { document.cookie = 'c=' + Math.random() + '; path=/; max-age=3600'; return true; }",
}

# A write transaction kept open (a chain of reads after the put) while the worker asks.
LONG_WRITE_JS = """() => new Promise((resolve) => {
  const open = indexedDB.open('app');
  open.onsuccess = () => {
    const tx = open.result.transaction('rows', 'readwrite');
    const store = tx.objectStore('rows');
    store.put({ n: 7 }, 'long');
    const until = Date.now() + 1500;
    const again = () => { if (Date.now() < until) store.get('long').onsuccess = again; };
    again();
    tx.oncomplete = () => { open.result.close(); window.__longDone = true; };
    resolve(true);
  };
})"""


@pytest.fixture
async def session(context_host: SharedBrowserHost) -> AsyncIterator[ContextSession]:
    opened = await context_host.open("sess_watch", None, on_gone=lambda: None)
    assert isinstance(opened, ContextSession)
    opened.page = await serve_origin(opened.context, ORIGIN)
    assert await opened.page.evaluate(SETUP_JS)
    try:
        yield opened
    finally:
        await opened.close()


async def save(session: ContextSession) -> bytes:
    """What BrowserSession.backup does when it saves: capture, then the archive is the saved one."""
    archive = await session.snapshot()
    session.mark_saved()
    return archive


async def test_a_page_is_clean_only_until_its_storage_is_written_in_any_way(session: ContextSession) -> None:
    # Given a page that has never been saved: it cannot be clean
    assert not await session.unchanged_since_saved()
    # When its archive is saved and nothing is written
    await save(session)
    # Then it is clean, and stays so when asked again
    assert await session.unchanged_since_saved()
    assert await session.unchanged_since_saved()
    assert session.page is not None
    for what, write in WRITES.items():
        # When the page writes its storage after the last save, in each way it can
        assert await session.page.evaluate(write), what
        # Then it is not clean (a save captures it), also when asked a second time before a capture
        assert not await session.unchanged_since_saved(), what
        assert not await session.unchanged_since_saved(), what
        # And once captured and saved again, it is clean
        await save(session)
        assert await session.unchanged_since_saved(), what


async def test_a_capture_that_was_not_saved_leaves_the_page_unclean(session: ContextSession) -> None:
    # Given a saved page that then writes
    await save(session)
    assert session.page is not None
    assert await session.page.evaluate(WRITES["put"])
    # When it is captured but the save does not happen (Redis refused it, the fence moved on)
    await session.snapshot()
    # Then the page is not clean: the next save captures again
    assert not await session.unchanged_since_saved()


async def test_a_new_document_and_a_write_still_open_at_the_capture_are_not_clean(session: ContextSession) -> None:
    await save(session)
    assert session.page is not None
    # When the page reloads (a new document: what its predecessor wrote is not known to the new one's watch)
    await session.page.reload()
    # Then it is not clean until saved again
    assert not await session.unchanged_since_saved()
    await save(session)
    assert await session.unchanged_since_saved()
    # When a write transaction is still open while the page is captured and saved
    assert await session.page.evaluate(LONG_WRITE_JS)
    await save(session)
    # Then the page stays unclean until a capture after the transaction ended
    assert not await session.unchanged_since_saved()
    await session.page.wait_for_function("() => window.__longDone === true")
    await save(session)
    assert await session.unchanged_since_saved()


async def test_a_second_page_in_the_context_makes_the_session_unclean(session: ContextSession) -> None:
    await save(session)
    assert await session.unchanged_since_saved()
    # When another page of the same origin opens in the session's context (its writes would not be seen)
    other = await session.context.new_page()
    try:
        # Then the session is not clean
        assert not await session.unchanged_since_saved()
    finally:
        await other.close()


def stored_messages(archive: bytes) -> list[str]:
    state = json.loads(parse_context_archive(archive)[1])
    wawc = next(db for db in state["indexedDB"] if db["name"] == "wawc")
    rows = next(store for store in wawc["stores"] if store["name"] == "messages")["records"]
    return [json.dumps(row) for row in rows]


async def test_a_graceful_stop_captures_a_page_written_after_its_last_save_and_skips_a_clean_one(
    redis: Redis,
    worker_env: pytest.MonkeyPatch,
    context_host: SharedBrowserHost,
    workers: list[Worker],
    sim: SimulatorServer,
    stub: IngestStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = await start_context_worker(worker_env, context_host, workers)
    phones = {"sess_watch_dirty": "15550000611", "sess_watch_clean": "15550000612"}
    for sid, phone in phones.items():
        await new_session(redis, sid)
        await scan_latest_qr(stub, sim, sid, phone)
    # Given two ready sessions, each saved on ready
    for sid in phones:
        await stub.wait_for(lambda sid=sid: "ready" in stub.statuses(sid), 30, f"{sid} ready")
    await stub.wait_for(lambda: worker.metrics.auth_saves >= 2, 30, "both saved on ready")
    saved = {sid: await worker.auth.load(sid) for sid in phones}
    # And a message arrives at one of them after its save (the page stores it in IndexedDB)
    await control(sim, "inbound", phone=phones["sess_watch_dirty"], sender="15557770611@c.us", body="after the save")
    await stub.wait_for(lambda: stub.select("message.received", "sess_watch_dirty"), 20, "the inbound message")
    captured: list[str] = []
    snapshot = ContextSession.snapshot

    async def counted(self: ContextSession) -> bytes:
        captured.append(self.session_id)
        return await snapshot(self)

    monkeypatch.setattr(ContextSession, "snapshot", counted)
    # When the worker stops gracefully
    await worker.stop()
    # Then the written page was captured and its archive holds the message; the clean one was not captured
    assert captured == ["sess_watch_dirty"]
    dirty = await worker.auth.load("sess_watch_dirty")
    assert dirty is not None and saved["sess_watch_dirty"] is not None
    assert any("after the save" in row for row in stored_messages(dirty.raw))
    assert not any("after the save" in row for row in stored_messages(saved["sess_watch_dirty"].raw))
    # And the clean one's archive is the one saved on ready, and its lease is back in the pool
    clean = await worker.auth.load("sess_watch_clean")
    assert clean is not None and saved["sess_watch_clean"] is not None
    assert clean.raw == saved["sess_watch_clean"].raw
    assert await redis.sismember(keys.unowned_sessions(), "sess_watch_clean")
