"""A browserless page stand-in, for benchmarks of the control plane only (`bench/scale.py`); refused outside dev.

`WAGW_PAGE=standin` swaps Chromium for this module behind the same interfaces the worker drives (`BrowserHost`,
`SessionBrowser`, `WhatsAppDriver`), so what a benchmark measures is our own machinery: leases, heartbeats, claims,
command streams, the outbox, ingest and delivery. A stand-in page "logs in" at once (restored from its archive, or
as a fresh device), emits the bridge's events in their shapes (`attached`, `state`, `message`, `ack`: see
driver.BRIDGE_JS), answers sends at once with WhatsApp's key, and snapshots an auth archive of a realistic size.

The "phone side" lives in files under `WAGW_STANDIN_DIR`, shared by every worker process on the machine:
- `control.json` (read every second): `{"inbound_per_minute": <per session>, "acks": <bool>}`: contacts write to
  every attached page at that rate; with `acks`, each send is followed by a delivery receipt (ack 2).
- `phone-<pid>.jsonl` (written as it happens): what "WhatsApp" saw: every inbound message handed to a page (`in`,
  its body) and every message a page sent (`out`, its key): the benchmark counts losses and duplicates from these;
  and each page opened and closed (`page`, the session id, `open`, `at`): when a session had no live page.
  A send retried by a new owner asks WhatsApp whether the key went out already (`find_message` reads every
  process's log), as the real driver does with `WPP.chat.getMessageById`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from playwright.async_api import BrowserContext, Playwright
from pydantic_settings import BaseSettings, SettingsConfigDict

from session_workers.browser import BrowserHost, SessionBrowser
from session_workers.driver import ExistingMessage, SendResult, WhatsAppDriver, chat_id
from shared.observability import logger
from shared.settings import Settings

ARCHIVE_FORMAT = "wagw-standin/1"
CONTROL_POLL_SECONDS = 1.0
INBOUND_TICK_SECONDS = 0.2
ACK_DELAY_SECONDS = 0.2
CONTACT = "6289900000001@c.us"
VERSIONS = {"wa_js": "standin", "whatsapp": "standin"}


class StandinSettings(BaseSettings):
    """`WAGW_PAGE=standin` selects the stand-in (benchmarks only; a worker outside `WAGW_ENV=dev` refuses it)."""

    model_config = SettingsConfigDict(env_prefix="WAGW_", extra="ignore")

    page: Literal["chromium", "standin"] = "chromium"
    standin_dir: Path = Path("/tmp/wagw-standin")
    # Raw archive size: WhatsApp Web's auth stores (wawc, signal keys, pre-keys) are some hundreds of KiB; the
    # content is half random (keys), so zstd stores about half of it.
    standin_archive_kb: int = 512


def selected() -> bool:
    return StandinSettings().page == "standin"


def phone_of(session_id: str) -> str:
    return "62899" + str(int(hashlib.sha256(session_id.encode()).hexdigest()[:10], 16))[:8].zfill(8)


def make_archive(session_id: str, phone: str, size_kb: int) -> bytes:
    """Deterministic per session (a backup of an unchanged page saves nothing), half random like key material."""
    header = {"format": ARCHIVE_FORMAT, "session_id": session_id, "phone": phone}
    body = random.Random(session_id).randbytes(size_kb * 512).hex().encode()
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def read_archive(archive: bytes) -> dict[str, Any] | None:
    first, _, _ = archive.partition(b"\n")
    with contextlib.suppress(ValueError):
        header = json.loads(first)
        if isinstance(header, dict) and header.get("format") == ARCHIVE_FORMAT:
            return header
    return None


class PhoneLog:
    """What 'WhatsApp' saw from this process, one JSON line per message, written at once (a SIGKILLed worker
    must not take the record of a send it made with it: the benchmark counts duplicates from this)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / f"phone-{os.getpid()}.jsonl"
        self.sent: set[str] = set()

    def record(self, kind: str, value: str) -> None:
        if kind == "out":
            self.sent.add(value)
        self._append({"kind": kind, "value": value})

    def page(self, session_id: str, opened: bool) -> None:
        """A page logged in (opened) or gone (closed), with the wall time: the benchmark's undriven gaps."""
        self._append({"kind": "page", "value": session_id, "open": opened, "at": time.time()})

    def _append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    def was_sent(self, key: str) -> bool:
        """Any process's page sent `key` (a new owner asking about its predecessor's send)."""
        if key in self.sent:
            return True
        needle = json.dumps({"kind": "out", "value": key})
        return any(needle in p.read_text() for p in self.directory.glob("phone-*.jsonl"))


class StandinPage:
    """One session's page: logged in at once, events through the driver's callback."""

    def __init__(self, host: StandinHost, session_id: str, archive: bytes | None) -> None:
        self.host = host
        self.session_id = session_id
        header = read_archive(archive) if archive else None
        self.restored = header is not None and header.get("session_id") == session_id
        self.phone = str(header["phone"]) if header is not None and self.restored else phone_of(session_id)
        self.archive = make_archive(session_id, self.phone, host.standin.standin_archive_kb)
        self.on_event: Callable[[str, dict[str, Any]], None] | None = None
        self.open = False
        self.inbound = 0

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        if self.open and self.on_event is not None:
            self.on_event(event_type, data)

    def load(self) -> None:
        if not self.open:
            self.host.log.page(self.session_id, True)
        self.open = True
        state = {"authenticated": True, "mode": "MAIN", "phone": f"{self.phone}@c.us", "why": "attached"}
        asyncio.get_running_loop().call_soon(self.emit, "attached", {**state, "qr": None, "versions": VERSIONS})
        self.host.pages[self.session_id] = self

    def close(self) -> None:
        if self.open:
            self.host.log.page(self.session_id, False)
        self.open = False
        if self.host.pages.get(self.session_id) is self:
            del self.host.pages[self.session_id]

    def deliver_inbound(self, body: str) -> None:
        """A contact's message reaches the page (as `chat.new_message` fires in the bridge)."""
        self.inbound += 1
        now = time.time()
        digest = hashlib.sha256(f"{self.session_id}\x00{body}".encode()).hexdigest()[:20].upper()
        message = {
            "id": f"false_{CONTACT}_3A{digest}",
            "fromMe": False,
            "chat": CONTACT,
            "from": CONTACT,
            "body": body,
            "type": "chat",
            "t": int(now),
            "caption": None,
            "quoted": None,
            "mentions": [],
            "location": None,
            "media": None,
            "phone": CONTACT.split("@")[0],
            "seenAt": now * 1000,
        }
        self.host.log.record("in", body)
        self.emit("message", message)

    def sent(self, chat: str, key: str) -> SendResult:
        self.host.log.record("out", key)
        if self.host.acks:
            data = {"ack": 2, "chat": chat, "reader": None, "ids": [key]}
            asyncio.get_running_loop().call_later(ACK_DELAY_SECONDS, self.emit, "ack", data)
        return SendResult(key, 1, None)


class StandinSession(SessionBrowser):
    def __init__(self, page: StandinPage) -> None:
        super().__init__(cast(BrowserContext, page))  # the driver gets the page where Chromium's context would be
        self.standin = page

    async def snapshot(self) -> bytes:
        return self.standin.archive

    async def close(self) -> None:
        self.closing = True
        self.standin.close()


class _NoBrowserRoundTrip:
    """/healthz asks the host's Playwright for a round trip; there is no browser, so it answers at once."""

    class _Request:
        async def new_context(self) -> Any:
            return self

        async def dispose(self) -> None:
            return None

    request = _Request()


class StandinHost(BrowserHost):
    strategy = "standin"

    def __init__(self, settings: Settings, standin: StandinSettings | None = None) -> None:
        if settings.env != "dev":
            raise RuntimeError("the page stand-in (WAGW_PAGE=standin) is for benchmarks only: refused outside dev")
        super().__init__(settings, None)
        self.standin = standin or StandinSettings()
        self.log = PhoneLog(self.standin.standin_dir)
        self.pages: dict[str, StandinPage] = {}
        self.inbound_per_minute = 0.0
        self.acks = False
        self._control_mtime = 0.0
        self._loop_task: asyncio.Task[None] | None = None

    async def playwright(self) -> Playwright:
        return cast(Playwright, _NoBrowserRoundTrip())

    async def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._phone_loop())
        logger.warning("pages are stand-ins (WAGW_PAGE=standin): benchmark only, no WhatsApp behind them")

    @property
    def connected(self) -> bool:
        return True

    async def open(self, session_id: str, archive: bytes | None, on_gone: Callable[[], None]) -> SessionBrowser:
        return StandinSession(StandinPage(self, session_id, archive))

    def new_driver(
        self, settings: Settings, on_event: Callable[[str, dict[str, Any]], None], on_crash: Callable[[], None]
    ) -> WhatsAppDriver:
        return StandinDriver(settings, on_event, on_crash)

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    def _read_control(self) -> None:
        path = self.standin.standin_dir / "control.json"
        with contextlib.suppress(OSError, ValueError):
            mtime = path.stat().st_mtime
            if mtime != self._control_mtime:
                self._control_mtime = mtime
                control = json.loads(path.read_text())
                self.inbound_per_minute = float(control.get("inbound_per_minute", 0))
                self.acks = bool(control.get("acks", False))

    async def _phone_loop(self) -> None:
        """Contacts write to every open page at the controlled rate (round-robin)."""
        due, turn, last_poll = 0.0, 0, 0.0
        while True:
            await asyncio.sleep(INBOUND_TICK_SECONDS)
            now = time.monotonic()
            if now - last_poll >= CONTROL_POLL_SECONDS:
                last_poll = now
                self._read_control()
            pages = [p for p in self.pages.values() if p.open]
            due += self.inbound_per_minute / 60 * len(pages) * INBOUND_TICK_SECONDS
            while due >= 1 and pages:
                due -= 1
                page = pages[turn % len(pages)]
                turn += 1
                page.deliver_inbound(f"scale:{page.session_id}:{os.getpid()}:{page.inbound}")
            if not pages:
                due = 0.0


class StandinDriver(WhatsAppDriver):
    """The driver's calls answered by the stand-in page; the bridge's events come from the page."""

    standin: StandinPage | None = None

    async def attach(self, context: BrowserContext) -> None:
        self.standin = cast(StandinPage, context)
        self.standin.on_event = self.on_event

    async def open_page(self, context: BrowserContext, page: Any = None) -> None:
        self._standin().load()

    async def reopen_page(self, context: BrowserContext) -> None:
        self._standin().load()

    def _standin(self) -> StandinPage:
        if self.standin is None:
            raise RuntimeError("no stand-in page")
        return self.standin

    def _page(self) -> Any:
        raise RuntimeError("the page stand-in has no Chromium page")

    async def resolve_chat(self, to: str, suffix: str) -> tuple[str, str]:
        chat = chat_id(to)
        return chat, f"true_{chat}_{suffix}"

    async def send_text(self, resolved_chat: str, text: str, message_key: str) -> SendResult:
        return self._standin().sent(resolved_chat, message_key)

    async def send_content(
        self, resolved_chat: str, message_key: str, content: dict[str, Any], media: dict[str, Any] | None
    ) -> SendResult:
        return self._standin().sent(resolved_chat, message_key)

    async def react(self, target_message_id: str, emoji: str) -> str | None:
        return None

    async def mark_read(self, chat: str) -> None:
        return None

    async def typing(self, chat: str, state: str, seconds: float) -> None:
        return None

    async def delete_for_everyone(self, message_key: str) -> str | None:
        return None

    async def edit_text(self, message_key: str, text: str) -> str | None:
        return None

    async def find_message(self, message_key: str) -> ExistingMessage:
        found = await asyncio.to_thread(self._standin().host.log.was_sent, message_key)
        return ExistingMessage(found, 1 if found else None)

    async def logout(self) -> bool:
        return True

    async def start_pairing_code(self, phone: str) -> str:
        raise RuntimeError("the page stand-in is always linked")

    async def recent_messages(self, since_s: int, *, max_chats: int, per_chat: int) -> list[dict[str, Any]]:
        return []

    async def download_media(self, message_id: str) -> tuple[bytes, str | None]:
        raise RuntimeError("the page stand-in holds no media")

    async def reject_call(self, call_id: str) -> None:
        return None

    async def versions(self) -> dict[str, Any]:
        return {**VERSIONS, "wpp_present": True, "wpp_ready": True}

    async def check_contact(self, phone: str) -> dict[str, Any]:
        return {"exists": True, "wid": chat_id(phone), "lid": None, "biz": False, "verified_name": None}

    async def chats(self, after_chat: str | None, count: int) -> list[dict[str, Any]]:
        return []

    async def chat_messages(self, chat: str, before_message: str | None, count: int) -> list[dict[str, Any]]:
        return []

    async def groups(self) -> list[dict[str, Any]]:
        return []

    async def group_participants(self, group: str) -> list[dict[str, Any]]:
        return []
