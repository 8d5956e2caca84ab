"""Where sessions live in Chromium, by auth strategy.

- `context`: one browser per worker, a context per session. Auth is the page's own storage captured in the page
  (js/capture_page_state.js: every IndexedDB database, store and record, CryptoKeys as JWK, Blobs, buffers, typed
  arrays, DataViews, Dates..., and localStorage) plus the context's cookies, restored into a fresh context on a
  blank page of the same origin before the site loads. The WebCrypto wrapper (js/webcrypto_wrapper.js, an init
  script) makes the keys the page creates exportable underneath while the page still sees them non-extractable.
- `profile`: a persistent profile (its own browser process) per session; auth is a tar of the profile's
  IndexedDB, Local Storage and cookie files, so everything comes back bit for bit, CryptoKeys included.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import shutil
import tarfile
import tempfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright, Route, async_playwright

from session_workers.driver import WhatsAppDriver
from shared.observability import logger
from shared.settings import Settings

JS_DIR = Path(__file__).parent / "js"
PAGE_STATE_FORMAT = "wagw-context/1"
RESTORE_PATH = "/__wagw_restore__"
ISOLATED_WORLD = "wagw-capture"


def _js(name: str) -> str:
    return (JS_DIR / name).read_text()


WEBCRYPTO_WRAPPER_JS = _js("webcrypto_wrapper.js")
STORAGE_WATCH_JS = _js("storage_watch.js")
# What the page's storage watch (js/storage_watch.js) saw since it was last asked, and the document's id; null
# where the watch is missing (a page it could not be installed in counts as changed).
TAKE_STORAGE_MARK_JS = "() => { const w = window[Symbol.for('wagw.storageWatch')]; return w ? w.take() : null; }"
CAPTURE_JS = _js("capture_page_state.js")
RESTORE_JS = _js("restore_page_state.js")

PROFILE_PARTS = ("Default/IndexedDB", "Default/Local Storage", "Default/Cookies", "Default/Cookies-journal")
SKIP_FILES = {"LOCK"}
# Chromium commits localStorage to disk only every few seconds, so a copy of the live profile can miss the newest
# entries; the archive also carries them as read from the page, and a one-shot init script puts them back.
LOCAL_STORAGE_SIDECAR = "wagw-local-storage.json"
RESTORE_MARK = "__wagw_restore"
READ_LOCAL_STORAGE_JS = f"""() => ({{
  origin: location.origin,
  items: Object.entries(localStorage).filter(([k]) => k !== '{RESTORE_MARK}'),
}})"""
RESTORE_LOCAL_STORAGE_JS = """(() => {
  const saved = __SAVED__;
  const token = __TOKEN__;
  try {
    if (window.top !== window || location.origin !== saved.origin) return;
    if (localStorage.getItem('__MARK__') === token) return;
    localStorage.clear();
    for (const [k, v] of saved.items) localStorage.setItem(k, v);
    localStorage.setItem('__MARK__', token);
  } catch (err) { /* storage unavailable */ }
})();"""


def launch_args(settings: Settings) -> list[str]:
    return list(settings.chromium_args)


class SessionBrowser(ABC):
    """One session's browsing context."""

    def __init__(self, context: BrowserContext, prepared_page: Page | None = None) -> None:
        self.context = context
        self.closing = False
        self.page: Page | None = None  # the session's page, set by the session once open
        # A page already open in the context (the `context` restore's page, left on the site's origin) for the
        # driver to load the site in: a second page would cost a second renderer process to start.
        self.prepared_page = prepared_page
        self.lost_keys = 0  # CryptoKeys the session holds that its archive cannot carry (context strategy only)

    def take_prepared_page(self) -> Page | None:
        page, self.prepared_page = self.prepared_page, None
        return page if page is not None and not page.is_closed() else None

    @abstractmethod
    async def snapshot(self) -> bytes:
        """The raw (uncompressed) auth archive of this session."""

    async def unchanged_since_saved(self) -> bool:
        """True only when the session's storage surely did not change since the archive last passed to
        `mark_saved` (then a save may skip the capture). Strategies that cannot tell answer False."""
        return False

    def mark_saved(self) -> None:  # noqa: B027 - optional hook
        """The archive of the last `snapshot` is the saved one now (or equal to it)."""

    async def close(self) -> None:
        self.closing = True
        try:
            await self.context.close()
        except Exception as exc:
            logger.debug("closing a context failed", extra={"error": repr(exc)})


class BrowserHost(ABC):
    strategy: str

    def __init__(self, settings: Settings, playwright: Playwright | None = None) -> None:
        self.settings = settings
        self._playwright = playwright
        self._own_playwright = playwright is None
        self.on_browser_lost: Callable[[], None] | None = None  # context strategy: every session is gone

    async def playwright(self) -> Playwright:
        if self._playwright is None:
            self._playwright = await async_playwright().start()
        return self._playwright

    async def start(self) -> None:
        await self.playwright()

    @abstractmethod
    async def open(self, session_id: str, archive: bytes | None, on_gone: Callable[[], None]) -> SessionBrowser:
        """A fresh browsing context for the session, restored from `archive` before any page loads."""

    def new_driver(
        self, settings: Settings, on_event: Callable[[str, dict[str, Any]], None], on_crash: Callable[[], None]
    ) -> WhatsAppDriver:
        """The session's driver, with the worker's settings (a host may outlive them: tests share one)."""
        return WhatsAppDriver(settings, on_event, on_crash)

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    async def relaunch(self) -> None:  # noqa: B027 - optional hook
        """After a browser crash (context strategy); nothing to do when each session has its own browser."""

    async def close(self) -> None:
        if self._own_playwright and self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None


# --- context strategy ---------------------------------------------------------------------------------
class LegacyArchive(Exception):
    """A `context` archive in Playwright's storage-state form (before in-page capture): its CryptoKeys are lost."""


def context_archive(origin: str, page_state: str, cookies: list[Any], lost_keys: int) -> bytes:
    """The `context` archive: a small JSON header line, then the page state (JSON) as captured in the page."""
    header = {"format": PAGE_STATE_FORMAT, "origin": origin, "lost_keys": lost_keys, "cookies": cookies}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n" + page_state.encode()


def parse_context_archive(archive: bytes) -> tuple[dict[str, Any], str]:
    """(header, page-state JSON); raises LegacyArchive for a storage-state archive of the earlier format."""
    first, _, rest = archive.partition(b"\n")
    header = json.loads(first)
    if not isinstance(header, dict) or header.get("format") != PAGE_STATE_FORMAT:
        raise LegacyArchive("storage-state archive from before in-page capture: its CryptoKeys were not kept")
    return header, rest.decode()


def _cookies_key(cookies: list[Any]) -> str:
    return json.dumps(sorted(cookies, key=lambda c: (c.get("domain"), c.get("path"), c.get("name"))), sort_keys=True)


class ContextSession(SessionBrowser):
    def __init__(self, context: BrowserContext, session_id: str, prepared_page: Page | None = None) -> None:
        super().__init__(context, prepared_page)
        self.session_id = session_id
        self._world: tuple[Page, CDPSession, int] | None = None
        # Skipping a capture: the document whose storage watch was reset right before the capture that is saved
        # now, and that archive's cookies (None: unknown, capture). `_captured` is the same for the last snapshot.
        self._saved: tuple[str, str] | None = None
        self._captured: tuple[str, str] | None = None

    async def _take_storage_mark(self) -> dict[str, Any] | None:
        """What the page's storage watch saw since the last take (and reset it): {doc, changed}, or None."""
        assert self.page is not None
        try:
            mark = await self.page.evaluate(TAKE_STORAGE_MARK_JS)
        except Exception as exc:  # the page navigated under the call, or went away: unknown
            logger.debug("storage mark unavailable", extra={"session_id": self.session_id, "error": repr(exc)})
            return None
        return mark if isinstance(mark, dict) and isinstance(mark.get("doc"), str) else None

    async def unchanged_since_saved(self) -> bool:
        """Nothing written to the page's IndexedDB or localStorage, the same document, the same cookies, and no
        other page or worker that could write the origin's storage unseen."""
        saved, page = self._saved, self.page
        if saved is None or page is None or page.is_closed():
            return False
        if len(self.context.pages) != 1 or page.workers or self.context.service_workers:
            return False
        mark = await self._take_storage_mark()
        if mark is None or mark["doc"] != saved[0] or mark.get("changed") is not False:
            self._saved = None  # the watch was reset: only the capture that follows may set a new baseline
            return False
        return _cookies_key(await self.context.cookies()) == saved[1]

    def mark_saved(self) -> None:
        self._saved = self._captured

    async def snapshot(self) -> bytes:
        """Capture the page's storage in an isolated world (the page's scripts neither see nor alter it)."""
        if self.page is None or self.page.is_closed():
            raise RuntimeError("no page to capture")
        self._saved = self._captured = None  # until this capture is saved, no baseline: the watch is reset below
        # Reset the storage watch first: a write after this point marks the page again, and one before it is in
        # the capture (IndexedDB runs a read transaction after the write transactions created before it; a write
        # transaction still open keeps the page marked).
        mark = await self._take_storage_mark()
        captured = await self._evaluate_isolated(CAPTURE_JS)
        if captured["lostKeys"] and not self.lost_keys:
            logger.warning(
                "this session holds CryptoKeys that cannot be exported (linked before the WebCrypto wrapper, or the "
                "wrapper is off): its archive is marked and moving it needs a new QR scan or the profile strategy",
                extra={"session_id": self.session_id, "lost_keys": captured["lostKeys"]},
            )
        self.lost_keys = int(captured["lostKeys"])
        cookies = await self.context.cookies()
        state = zlib.decompress(base64.b64decode(captured["deflated"])).decode()
        if mark is not None:
            self._captured = (mark["doc"], _cookies_key(list(cookies)))
        return context_archive(captured["origin"], state, list(cookies), self.lost_keys)

    async def _evaluate_isolated(self, expression: str) -> Any:
        for attempt in range(2):
            _, cdp, world = await self._isolated_world()
            call = {"expression": f"({expression})()", "contextId": world, "awaitPromise": True, "returnByValue": True}
            try:
                reply = await cdp.send("Runtime.evaluate", call)
            except Exception:
                self._world = None  # the page navigated or reloaded: its world went with it
                if attempt:
                    raise
                continue
            if "exceptionDetails" in reply:
                raise RuntimeError(f"page state capture failed: {reply['exceptionDetails'].get('text')}")
            return reply["result"]["value"]
        raise AssertionError("unreachable")

    async def _isolated_world(self) -> tuple[Page, CDPSession, int]:
        assert self.page is not None
        if self._world is not None and self._world[0] is self.page:
            return self._world
        cdp = await self.context.new_cdp_session(self.page)
        tree = await cdp.send("Page.getFrameTree")
        world = await cdp.send(
            "Page.createIsolatedWorld", {"frameId": tree["frameTree"]["frame"]["id"], "worldName": ISOLATED_WORLD}
        )
        self._world = (self.page, cdp, int(world["executionContextId"]))
        return self._world


def deflate_page_state(page_state: str) -> str:
    """The page state as the restore script takes it: deflated (zlib), base64. Level 1: the state is ~1 MiB of
    repetitive JSON that level 1 already shrinks ~14x in a few milliseconds."""
    return base64.b64encode(zlib.compress(page_state.encode(), 1)).decode()


async def restore_page_state(
    context: BrowserContext, header: dict[str, Any], page_state: str
) -> tuple[Page, dict[str, Any]]:
    """Write the archived storage into `context` from a blank page of the same origin, before the site loads.
    Returns that page (left on the blank page, for the site to load in) and the restore's counts."""
    origin = header.get("origin")
    if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
        raise ValueError("context archive without an http(s) origin")
    url = origin + RESTORE_PATH

    async def blank(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>restore</title>")

    deflated = asyncio.create_task(asyncio.to_thread(deflate_page_state, page_state))
    await context.route(url, blank)
    page = await context.new_page()
    try:
        await page.goto(url)
        counts: dict[str, Any] = await page.evaluate(RESTORE_JS, await deflated)
    except BaseException:
        deflated.cancel()
        await page.close()
        raise
    finally:
        await context.unroute(url, blank)
    if header.get("cookies"):
        await context.add_cookies(header["cookies"])
    return page, counts


class SharedBrowserHost(BrowserHost):
    strategy = "context"

    def __init__(self, settings: Settings, playwright: Playwright | None = None) -> None:
        super().__init__(settings, playwright)
        self.browser: Browser | None = None
        self._closing = False

    async def start(self) -> None:
        pw = await self.playwright()
        self._closing = False
        self.browser = await pw.chromium.launch(
            executable_path=self.settings.chromium_path, headless=True, args=launch_args(self.settings)
        )
        self.browser.on("disconnected", self._disconnected)

    def _disconnected(self, _: Browser) -> None:
        if not self._closing and self.on_browser_lost is not None:
            self.on_browser_lost()

    @property
    def connected(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    async def relaunch(self) -> None:
        self._closing = True
        if self.browser is not None:
            try:
                await self.browser.close()
            except Exception:
                logger.debug("closing a crashed browser failed")
        await self.start()

    async def open(self, session_id: str, archive: bytes | None, on_gone: Callable[[], None]) -> SessionBrowser:
        if self.browser is None or not self.browser.is_connected():
            raise RuntimeError("the browser is not running")
        header, page_state, legacy_state = None, None, None
        if archive:
            try:
                header, page_state = parse_context_archive(archive)
            except LegacyArchive as exc:
                legacy_state = json.loads(archive)
                logger.warning(f"{exc}; a new QR scan is needed", extra={"session_id": session_id})
        context = await self.browser.new_context(storage_state=legacy_state, user_agent=self.settings.user_agent)
        await context.add_init_script(script=STORAGE_WATCH_JS)
        if self.settings.context_exportable_keys:
            await context.add_init_script(script=WEBCRYPTO_WRAPPER_JS)
        if header is not None and page_state is not None:
            if header.get("lost_keys"):
                logger.warning(
                    "restoring an archive whose CryptoKeys could not be exported: the site will ask for a new login",
                    extra={"session_id": session_id, "lost_keys": header["lost_keys"]},
                )
            try:
                page, counts = await restore_page_state(context, header, page_state)
            except Exception:
                await context.close()
                raise
            logger.debug("page state restored", extra={"session_id": session_id, **counts})
            return ContextSession(context, session_id, prepared_page=page)
        return ContextSession(context, session_id)

    async def close(self) -> None:
        self._closing = True
        if self.browser is not None:
            try:
                await self.browser.close()
            except Exception:
                logger.debug("closing the browser failed")
            self.browser = None
        await super().close()


# --- profile strategy ---------------------------------------------------------------------------------
def archive_profile(root: Path, local_storage: bytes | None = None) -> bytes:
    """A deterministic tar (sorted, zeroed times) of the profile parts that hold auth."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if local_storage is not None:
            info = tarfile.TarInfo(LOCAL_STORAGE_SIDECAR)
            info.size = len(local_storage)
            tar.addfile(info, io.BytesIO(local_storage))
        for part in PROFILE_PARTS:
            path = root / part
            if not path.exists():
                continue
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if file.name in SKIP_FILES:
                    continue
                try:
                    data = file.read_bytes()
                except FileNotFoundError:  # LevelDB rotated a file while we walked
                    continue
                info = tarfile.TarInfo(str(file.relative_to(root)))
                info.size = len(data)
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def extract_profile(archive: bytes, root: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(root, filter="data")


class ProfileSession(SessionBrowser):
    def __init__(self, context: BrowserContext, root: Path) -> None:
        super().__init__(context)
        self.root = root

    async def snapshot(self) -> bytes:
        local_storage = None
        if self.page is not None and not self.page.is_closed():
            try:
                saved = await self.page.evaluate(READ_LOCAL_STORAGE_JS)
                local_storage = json.dumps(saved, sort_keys=True).encode()
            except Exception as exc:
                logger.debug("reading localStorage failed", extra={"error": repr(exc)})
        return await asyncio.to_thread(archive_profile, self.root, local_storage)

    async def close(self) -> None:
        await super().close()
        await asyncio.to_thread(shutil.rmtree, self.root, True)


class ProfileHost(BrowserHost):
    strategy = "profile"

    def __init__(self, settings: Settings, playwright: Playwright | None = None) -> None:
        super().__init__(settings, playwright)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.base = Path(settings.profiles_dir) if settings.profiles_dir else None

    async def start(self) -> None:
        await super().start()
        if self.base is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="wagw-profiles-")
            self.base = Path(self._tmp.name)
        self.base.mkdir(parents=True, exist_ok=True)

    @property
    def connected(self) -> bool:
        return self._playwright is not None

    async def open(self, session_id: str, archive: bytes | None, on_gone: Callable[[], None]) -> SessionBrowser:
        assert self.base is not None, "start() first"
        root = self.base / session_id
        await asyncio.to_thread(shutil.rmtree, root, True)
        root.mkdir(parents=True)
        sidecar = None
        if archive:
            await asyncio.to_thread(extract_profile, archive, root)
            sidecar_path = root / LOCAL_STORAGE_SIDECAR
            if sidecar_path.exists():
                sidecar = await asyncio.to_thread(sidecar_path.read_text)
        pw = await self.playwright()
        context = await pw.chromium.launch_persistent_context(
            str(root),
            executable_path=self.settings.chromium_path,
            headless=True,
            args=launch_args(self.settings),
            user_agent=self.settings.user_agent,
        )
        if sidecar:
            restore = (
                RESTORE_LOCAL_STORAGE_JS.replace("__SAVED__", sidecar)
                .replace("__TOKEN__", json.dumps(secrets.token_hex(8)))
                .replace("__MARK__", RESTORE_MARK)
            )
            await context.add_init_script(script=restore)
        session = ProfileSession(context, root)

        def closed(_: BrowserContext) -> None:
            if not session.closing:
                on_gone()

        context.on("close", closed)
        return session

    async def close(self) -> None:
        await super().close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def make_host(settings: Settings, playwright: Playwright | None = None) -> BrowserHost:
    from session_workers import standin  # benchmarks only: WAGW_PAGE=standin (no browser)

    if standin.selected():
        return standin.StandinHost(settings)
    if settings.auth_strategy == "context":
        return SharedBrowserHost(settings, playwright)
    return ProfileHost(settings, playwright)
