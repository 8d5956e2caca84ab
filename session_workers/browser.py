"""Where sessions live in Chromium, by auth strategy.

- `context`: one browser per worker, a context per session; auth is `storage_state(indexed_db=True)` (JSON).
  Densest, but Playwright's storage state drops CryptoKey, Blob and DataView values (they come back as `{}`).
- `profile`: a persistent profile (its own browser process) per session; auth is a tar of the profile's
  IndexedDB, Local Storage and cookie files, so everything comes back bit for bit, CryptoKeys included.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import shutil
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from shared.observability import logger
from shared.settings import Settings

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

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.closing = False
        self.page: Page | None = None  # the session's page, set by the session once open

    @abstractmethod
    async def snapshot(self) -> bytes:
        """The raw (uncompressed) auth archive of this session."""

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
class ContextSession(SessionBrowser):
    async def snapshot(self) -> bytes:
        state = await self.context.storage_state(indexed_db=True)
        return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


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
        state = json.loads(archive) if archive else None
        context = await self.browser.new_context(storage_state=state, user_agent=self.settings.user_agent)
        return ContextSession(context)

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
    if settings.auth_strategy == "context":
        return SharedBrowserHost(settings, playwright)
    return ProfileHost(settings, playwright)
