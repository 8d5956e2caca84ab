"""One WhatsApp session driven by this worker: page events -> outbox events, commands -> WPP calls.

Everything a session writes goes through the fence (`Ownership.emit`, `AuthStore.save/delete`); the first refused
write means another worker owns the session now, and this one stops driving it at once (`abort`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from session_workers import inbound, queries
from session_workers.archive_crypto import ArchiveUnreadable
from session_workers.auth import AuthArchive, digest
from session_workers.browser import SessionBrowser
from session_workers.driver import SendResult, WhatsAppDriver, api_message_suffix, is_api_message, page_closed
from session_workers.media import MediaPayload, MediaUnavailable, resolve_media
from session_workers.ownership import REDIS_UNAVAILABLE, FencedOff, Lease
from shared import redis_keys as keys
from shared.commands import (
    COMMANDS_GROUP,
    Command,
    DeleteMessageCommand,
    EditMessageCommand,
    LogoutCommand,
    MarkReadCommand,
    ReadCommand,
    RequestPairingCodeCommand,
    RestartCommand,
    SendMessageCommand,
    SendTextCommand,
    StopCommand,
    TypingCommand,
    parse_command,
)
from shared.events import (
    Ack,
    CallReceivedEvent,
    Event,
    GroupParticipantsEvent,
    MessageAckData,
    MessageAckEvent,
    MessageEditedEvent,
    MessageFailedData,
    MessageFailedEvent,
    MessageMediaData,
    MessageMediaEvent,
    MessageReactionEvent,
    MessageReceivedData,
    MessageReceivedEvent,
    MessageRevokedEvent,
    MessageSentData,
    MessageSentEvent,
    PresenceEvent,
    SessionPairingCodeData,
    SessionPairingCodeEvent,
    SessionQrData,
    SessionQrEvent,
    SessionStatus,
    SessionStatusData,
    SessionStatusEvent,
    TypingData,
    TypingEvent,
    ack_from_wa,
    event_to_json,
    whatsapp_event_id,
)
from shared.ids import new_event_id
from shared.observability import logger, metrics
from shared.outgoing import OutgoingContent
from shared.settings import Settings
from shared.store import media as media_store
from shared.store import workspaces
from shared.store.media import MediaRecord
from shared.store.records import WorkspaceRecord

if TYPE_CHECKING:
    from session_workers.worker import Worker

BLOCKED_MODES = {"PROXYBLOCK", "TOS_BLOCK", "SMB_TOS_BLOCK", "DEPRECATED_VERSION"}
STALE_PENDING_CHECK_SECONDS = 5.0
MEDIA_DOWNLOAD_TRIES = 3
PACING_CACHE_SECONDS = 2.0
ARCHIVE_RETRY_PAUSE_SECONDS = 10.0
TYPING_BEFORE_SEND_MIN_SECONDS = 1.0
TYPING_BEFORE_SEND_MAX_SECONDS = 5.0
LOST_KEYS_REASON = (
    "auth_keys_not_archivable: {keys} CryptoKey(s) of this session were created non-extractable (linked before the "
    "WebCrypto wrapper, or with it off): it works here, but after a move to another worker, a restart or a crash it "
    "needs a new QR scan; re-link it, or run it with the profile strategy"
)


@dataclass(frozen=True)
class Pacing:
    gap_ms: int
    jitter_ms: int
    typing_before_send: bool

    @classmethod
    def of(cls, settings: Settings, workspace: WorkspaceRecord | None) -> Pacing:
        def pick(name: str) -> Any:
            value = getattr(workspace, name, None) if workspace is not None else None
            return getattr(settings, name) if value is None else value

        return cls(pick("send_gap_ms"), pick("send_jitter_ms"), pick("typing_before_send"))


MEDIA_DOWNLOADS_AT_ONCE = 4
_media_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def media_slots() -> asyncio.Semaphore:
    """The worker's inbound media downloads share a few slots (each holds the file in the page and in memory)."""
    loop = asyncio.get_running_loop()
    if loop not in _media_slots:
        _media_slots[loop] = asyncio.Semaphore(MEDIA_DOWNLOADS_AT_ONCE)
    return _media_slots[loop]


COMMAND_RETRY_SECONDS = 0.5
HANDED_ON_TYPES = ("message", "ack")  # page events whose facts WhatsApp will not send again
# An event that could not be written for these reasons is handed on to the worker's spool, not dropped.
HAND_ON_WHEN: tuple[type[BaseException], ...] = (*REDIS_UNAVAILABLE, FencedOff, asyncio.CancelledError)
# What a tenant reads in `message.failed` for each SendMsgResult (whatsapp/enums/SendMsgResult.ts).
SEND_FAILURES = {
    "ERROR_NETWORK": "WhatsApp could not reach its servers to send the message",
    "ERROR_EXPIRED": "the message expired before WhatsApp could send it",
    "ERROR_CANCELLED": "WhatsApp cancelled the send",
    "ERROR_UPLOAD": "WhatsApp could not upload the message's media",
    "ERROR_UNKNOWN": "WhatsApp reported an unknown error while sending",
}


def phone_of(to: str) -> str | None:
    """The phone number a tenant addressed, if it addressed one (not a LID or a group)."""
    user, _, server = to.partition("@")
    return "".join(ch for ch in user if ch.isdigit()) or None if server in ("", "c.us") else None


def failure_reason(failure: str) -> str:
    """`send_result:ERROR_NETWORK` / `ack_error:-1` -> a reason a person understands, the code first."""
    kind, _, detail = failure.partition(":")
    if kind == "send_result":
        return f"{detail}: {SEND_FAILURES.get(detail, 'WhatsApp did not send the message')}"
    if kind == "ack_error":
        return f"ack_error: WhatsApp marked the message as failed (ack {detail})"
    return failure


class PageGone(Exception):
    """The page closed or crashed under a command: the command stays pending and runs again once the page is back
    (a crashed page is reopened by the session; a stopping session leaves it to the next owner)."""


class SessionBase:
    """What the worker needs of a session; the browser-driving one is `BrowserSession` (tests add fakes)."""

    def __init__(self, worker: Worker, lease: Lease, workspace_id: str) -> None:
        self.worker = worker
        self.lease = lease
        self.id = lease.session_id
        self.workspace_id = workspace_id
        self.status: SessionStatus | None = None
        self.stopping = False
        self.restarts = 0
        self._stop_task: asyncio.Task[None] | None = None
        self.start_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        raise NotImplementedError

    def abort(self, reason: str) -> None:
        """Stop driving now, without writing anything (the lease is lost or may lapse)."""
        raise NotImplementedError

    async def shutdown(
        self,
        *,
        save: bool,
        requeue: bool,
        status: SessionStatus | None = None,
        reason: str | None = None,
        delete_auth: bool = False,
    ) -> None:
        raise NotImplementedError

    async def backup(self) -> bool:
        return False

    def browser_lost(self) -> None:
        """The shared browser died (context strategy): reopen from the saved auth."""

    def request_shutdown(self, **kwargs: Any) -> None:
        if self._stop_task is None:
            self._stop_task = self.worker.spawn(self.shutdown(**kwargs))


class BrowserSession(SessionBase):
    handing_on = False  # stopped driving: what it still emits goes to the worker's spool

    def __init__(self, worker: Worker, lease: Lease, workspace_id: str) -> None:
        super().__init__(worker, lease, workspace_id)
        self.settings = worker.settings
        self.browser: SessionBrowser | None = None
        self.driver: WhatsAppDriver | None = None
        self.ready = asyncio.Event()
        self.inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.qr_count = 0
        self.last_qr: str | None = None
        self.crashes: deque[float] = deque()
        self.saved_sha: str | None = None
        self.logout_reason: str | None = None
        self.logging_out = False
        self.phone: str | None = None
        self.attached = asyncio.Event()
        self.sends_in_flight: dict[str, asyncio.Future[None]] = {}
        self.next_send_at = 0.0
        self.pacing: Pacing | None = None
        self.pacing_read_at = 0.0
        self.reconcile_since_s: int | None = None
        self.restored_as_saved = False
        self.lost_keys_reported = False
        self.failures_reported: deque[str] = deque(maxlen=512)
        self.last_link_code: str | None = None
        self.link_code_count = 0
        self._reopen_lock = asyncio.Lock()
        self._backup_lock = asyncio.Lock()  # one capture at a time: the backup loop and a stop may meet

    # --- lifecycle ---------------------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _spawn_aside(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Work that must not hold up the page's events (they reach the outbox first): a failure is logged, a
        refused fence still stops the session."""

        async def aside() -> None:
            try:
                await coro
            except FencedOff:
                raise
            except Exception:
                logger.exception("session side task failed", extra={"session_id": self.id, "what": what})

        self._spawn(aside())

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, FencedOff):
            self.abort("fenced_off")
        elif exc is not None:
            logger.exception("session task failed", exc_info=exc, extra={"session_id": self.id})
            if not self.stopping:
                self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason="internal_error")

    async def start(self) -> None:
        self._spawn(self._event_loop())
        await self.set_status(SessionStatus.STARTING)
        try:
            archive = await self._load_archive()
        except ArchiveUnreadable:
            return
        if archive is not None and archive.strategy == self.worker.host.strategy:
            # A stale archive (unsealed, or under a key no longer configured) compares unequal: the next save re-seals.
            self.saved_sha = archive.compare_sha
        elif archive is not None:
            logger.warning(
                "auth archive from another strategy; a new login is needed",
                extra={"session_id": self.id, "archive": archive.strategy},
            )
        await self._open(archive)
        self._spawn(self._command_loop())
        self._spawn(queries.watch(self))

    async def _load_archive(self) -> AuthArchive | None:
        """The saved login, or None. One that cannot be opened stops the session rather than starting it fresh
        (a fresh page's first save would overwrite the login): `failed` with the reason, or, when the key service
        may answer later, back to the unowned set after a pause so a worker tries again."""
        try:
            return await self.worker.auth.load(self.id)
        except ArchiveUnreadable as exc:
            logger.error(
                "auth archive unreadable", extra={"session_id": self.id, "status": exc.status, "reason": exc.reason}
            )
            if exc.transient:
                await asyncio.sleep(ARCHIVE_RETRY_PAUSE_SECONDS)
                self.request_shutdown(save=False, requeue=True)
            else:
                reason = f"auth_archive_{exc.status}: {exc.reason}"[:500]
                self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason=reason)
            raise

    async def _open(self, archive: AuthArchive | None) -> None:
        """Open the session's page, restored from `archive` when it is of this worker's strategy."""
        usable = archive is not None and archive.strategy == self.worker.host.strategy
        raw = archive.raw if archive is not None and usable else None
        # Restored from an archive that needs no re-sealing: the first save on `ready` would capture the whole
        # store again only to find it unchanged (costly in a mass takeover); the periodic backup catches changes.
        self.restored_as_saved = bool(archive is not None and usable and not archive.stale)
        if archive is not None and usable:
            # The archived page holds what its predecessor stored: reconcile from shortly before the save.
            self.reconcile_since_s = archive.saved_at_ms // 1000 - self.settings.reconcile_lookback_seconds
        # A context the worker restored from this very archive while the previous owner's lease ran out (`context`):
        # only the site's load is left.
        prepared = self.worker.take_prepared(self.id, archive) if archive is not None and usable else None
        self.browser = prepared or await self.worker.host.open(self.id, raw, on_gone=self._browser_gone)
        if self.stopping:
            await self.browser.close()
            return
        self.driver = self.worker.host.new_driver(self.settings, self._page_event, self._renderer_crash)
        await self.driver.attach(self.browser.context)
        await self._load_page(self.driver.open_page(self.browser.context, self.browser.take_prepared_page()))

    async def _load_page(self, loading: Coroutine[Any, Any, None]) -> None:
        """Load (or reload) the page and expect the bridge to attach within the bound."""
        assert self.browser is not None and self.driver is not None
        self.attached.clear()
        await loading
        self.browser.page = self.driver.page
        self._spawn(self._expect_attach())

    async def _expect_attach(self) -> None:
        """A WhatsApp Web update can break wa-js: `WPP.isReady` never turns true. Say so plainly."""
        try:
            await asyncio.wait_for(self.attached.wait(), self.settings.wa_js_ready_timeout_seconds)
            return
        except TimeoutError:
            pass
        versions: dict[str, Any] = {}
        if self.driver is not None:
            with contextlib.suppress(Exception):
                versions = await self.driver.versions()
        logger.error(
            "wa-js did not become ready on this WhatsApp Web build",
            extra={
                "session_id": self.id,
                "wa_js_version": versions.get("wa_js"),
                "whatsapp_version": versions.get("whatsapp"),
                "wpp_present": versions.get("wpp_present"),
                "timeout_s": self.settings.wa_js_ready_timeout_seconds,
            },
        )
        self.worker.metrics.wa_js_incompatible += 1
        metrics.add_metric(name="WaJsIncompatible", unit="Count", value=1)
        with contextlib.suppress(Exception):
            metrics.flush_metrics()
        self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason="wa_js_incompatible")

    async def _close_browser(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            await browser.close()

    def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        if self.start_task is not None and self.start_task is not current:
            self.start_task.cancel()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()

    def abort(self, reason: str) -> None:
        if self.stopping and self._stop_task is not None and reason != "fenced_off":
            return
        logger.warning("stopped driving a session", extra={"session_id": self.id, "reason": reason})
        self.stopping = True
        self.ready.clear()
        self._cancel_tasks()
        self.worker.forget(self)
        self.worker.spawn(self._close_and_hand_on())

    async def _close_and_hand_on(self) -> None:
        await self._close_browser()
        await self._hand_on_inbox()

    async def _hand_on_inbox(self) -> None:
        """The page is closed: what it delivered but this session never wrote goes to the worker's spool (and the
        outbox when Redis takes it), since WhatsApp does not send an acknowledged message again."""
        self.handing_on = True
        while not self.inbox.empty():
            event_type, data = self.inbox.get_nowait()
            if event_type not in HANDED_ON_TYPES:
                continue
            try:
                await self._handle(event_type, data)
            except Exception:
                logger.exception("an unwritten page event could not be handed on", extra={"session_id": self.id})

    async def shutdown(
        self,
        *,
        save: bool,
        requeue: bool,
        status: SessionStatus | None = None,
        reason: str | None = None,
        delete_auth: bool = False,
    ) -> None:
        self.stopping = True
        self._cancel_tasks()
        try:
            if save and self.browser is not None and self.ready.is_set():
                await self.backup(force=False)
            if delete_auth:
                await self.worker.auth.delete(self.lease)
            if status is not None:
                await self.set_status(status, reason, force=True)
        except FencedOff:
            self.abort("fenced_off")
            return
        except Exception:
            logger.exception("session shutdown step failed", extra={"session_id": self.id})
        self.ready.clear()
        await self._close_browser()
        await self._hand_on_inbox()
        try:
            await self.worker.ownership.release(self.lease, requeue=requeue)
        except Exception:
            logger.exception("lease release failed (it will lapse)", extra={"session_id": self.id})
        self.worker.forget(self)

    async def backup(self, force: bool = False) -> bool:
        """Save the auth archive if it changed since the last save (fenced). True when saved. A page whose
        storage surely did not change since the saved archive is not even captured (`context`: the page's storage
        watch; a graceful stop of clean sessions hands them back at once)."""
        async with self._backup_lock:
            browser = self.browser
            if browser is None or not self.ready.is_set():
                return False
            if not force and await browser.unchanged_since_saved():
                return False
            raw = await browser.snapshot()
            if browser.lost_keys and not self.lost_keys_reported and self.status is SessionStatus.READY:
                # Ready here, but the archive cannot bring the login back elsewhere: say so where the tenant looks.
                self.lost_keys_reported = True
                await self.set_status(SessionStatus.READY, LOST_KEYS_REASON.format(keys=browser.lost_keys), force=True)
            sha = digest(raw)
            if sha == self.saved_sha and not force:
                browser.mark_saved()
                return False
            stored = await self.worker.auth.save(self.lease, self.worker.host.strategy, raw)
            self.saved_sha = sha
            browser.mark_saved()
            self.worker.metrics.auth_saves += 1
            logger.debug("auth saved", extra={"session_id": self.id, "bytes": stored})
            return True

    # --- crashes -----------------------------------------------------------------------------------------
    def _renderer_crash(self) -> None:
        self.inbox.put_nowait(("_crash", {"what": "renderer"}))

    def _browser_gone(self) -> None:
        self.inbox.put_nowait(("_crash", {"what": "browser"}))

    def browser_lost(self) -> None:
        self.inbox.put_nowait(("_crash", {"what": "shared_browser"}))

    async def _on_crash(self, what: str) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > self.settings.crash_loop_window_seconds:
            self.crashes.popleft()
        self.restarts += 1
        self.worker.metrics.restarts += 1
        self.ready.clear()
        if len(self.crashes) >= self.settings.crash_loop_limit:
            logger.error("session keeps crashing; marked failed", extra={"session_id": self.id, "what": what})
            self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason=f"crash_loop:{what}")
            return
        logger.warning("session crashed; reopening", extra={"session_id": self.id, "what": what})
        await self.set_status(SessionStatus.STARTING, f"{what}_crash")
        async with self._reopen_lock:
            if what == "renderer" and self.browser is not None and self.driver is not None:
                await self._load_page(self.driver.reopen_page(self.browser.context))
                return
            if what == "shared_browser":
                await self.worker.browser_relaunched.wait()
            old, self.browser = self.browser, None
            if old is not None:
                old.closing = True
                with contextlib.suppress(Exception):
                    await old.close()
            # Through the worker's start slots: after a browser crash every session reopens at once, and 50
            # restores started together all finish late (and risk the page-load timeout) on a few cores.
            async with self.worker.start_slots:
                if self.stopping:
                    return
                await self._open(await self._load_archive())

    # --- page events -------------------------------------------------------------------------------------
    def _page_event(self, event_type: str, data: dict[str, Any]) -> None:
        self.inbox.put_nowait((event_type, data))

    async def _event_loop(self) -> None:
        while True:
            event_type, data = await self.inbox.get()
            try:
                await self._handle(event_type, data)
            except FencedOff:
                raise
            except Exception:
                logger.exception("page event handling failed", extra={"session_id": self.id, "event": event_type})

    async def _handle(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type == "_crash":
            await self._on_crash(str(data.get("what")))
        elif event_type == "attached":
            await self._on_attached(data)
        elif event_type == "state":
            await self._on_state(data)
        elif event_type == "qr":
            await self._on_qr(str(data.get("code") or ""))
        elif event_type == "qr_idle":
            self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason="qr_timeout")
        elif event_type.startswith("link_code"):
            await self._on_link_code(event_type, data)
        elif event_type == "logout_reason":
            self.logout_reason = str(data.get("reason") or "") or None
        elif event_type == "logout":
            await self._on_logout()
        elif event_type == "message":
            await self._on_message(data)
        elif event_type == "ack":
            await self._on_ack(data)
        else:
            await self._on_other(event_type, data)

    async def _on_other(self, event_type: str, data: dict[str, Any]) -> None:
        """Reactions, edits, deletions, presence and typing, group membership, calls."""
        event: Event | None = None
        env = self._env()
        if event_type == "reaction":
            event = MessageReactionEvent(
                id=whatsapp_event_id(self.id, "reaction", str(data["id"])), **env, data=inbound.reaction_data(data)
            )
        elif event_type == "edited":
            edit = inbound.edited_data(data)
            event_id = whatsapp_event_id(self.id, "edited:" + inbound.event_key(edit.body), edit.message_id)
            event = MessageEditedEvent(id=event_id, **env, data=edit)
        elif event_type == "revoked":
            revoked = inbound.revoked_data(data)
            event = MessageRevokedEvent(
                id=whatsapp_event_id(self.id, "revoked", revoked.message_id), **env, data=revoked
            )
        elif event_type == "presence":
            state = inbound.presence_or_typing(data)
            event = (
                TypingEvent(**env, data=state) if isinstance(state, TypingData) else PresenceEvent(**env, data=state)
            )
        elif event_type == "group":
            group = inbound.group_data(data)
            if group is not None:
                key = inbound.event_key(group.group_id, group.action, *group.participants, str(time.time() // 60))
                event = GroupParticipantsEvent(id=whatsapp_event_id(self.id, "group", key), **env, data=group)
        elif event_type == "call":
            event = await self._on_call(data)
        if event is not None:
            await self.emit(event)

    async def _on_call(self, data: dict[str, Any]) -> CallReceivedEvent:
        workspace = await workspaces.get_workspace(self.worker.redis, self.workspace_id)
        rejected = bool(workspace is not None and workspace.reject_calls)
        if rejected and self.driver is not None:
            try:
                await self.driver.reject_call(str(data["id"]))
            except Exception as exc:
                rejected = False
                logger.warning("rejecting a call failed", extra={"session_id": self.id, "error": repr(exc)})
        call = inbound.call_data(data, rejected=rejected)
        return CallReceivedEvent(id=whatsapp_event_id(self.id, "call", call.call_id), **self._env(), data=call)

    async def _on_attached(self, data: dict[str, Any]) -> None:
        self.attached.set()
        versions = data.get("versions") or {}
        logger.info(
            "bridge attached",
            extra={
                "session_id": self.id,
                "wa_js_version": versions.get("wa_js"),
                "whatsapp_version": versions.get("whatsapp"),
            },
        )
        await self._on_state(data)
        if not self.ready.is_set() and data.get("qr"):
            await self._on_qr(str(data["qr"]))

    async def _on_state(self, data: dict[str, Any]) -> None:
        """Status from the connection's state: ready = authenticated AND stream mode MAIN (never `main_ready`)."""
        authenticated = bool(data.get("authenticated"))
        mode = str(data.get("mode") or "")
        if data.get("phone"):
            self.phone = str(data["phone"]).split("@")[0].split(":")[0]
        if mode == "CONFLICT":
            self.ready.clear()
            await self.set_status(SessionStatus.CONFLICT, "opened_elsewhere")
        elif not authenticated:
            return
        elif mode == "MAIN":
            await self._on_ready()
        elif mode == "OFFLINE":
            self.ready.clear()
            await self.set_status(SessionStatus.DISCONNECTED, "offline")
        elif mode in BLOCKED_MODES:
            self.ready.clear()
            await self.set_status(SessionStatus.DISCONNECTED, mode.lower())
        elif self.status in (SessionStatus.QR, SessionStatus.PAIRING):
            await self.set_status(SessionStatus.AUTHENTICATED)

    async def _on_link_code(self, event_type: str, data: dict[str, Any]) -> None:
        """The managed pairing-code lifecycle: every new code is an event; its expiry or failure ends the attempt."""
        if event_type == "link_code":
            code = str(data.get("code") or "")
            if not code or code == self.last_link_code or self.stopping:
                return
            self.last_link_code = code
            self.link_code_count += 1
            self.status = SessionStatus.PAIRING
            expires = datetime.now(UTC) + timedelta(seconds=self.settings.pairing_code_ttl_seconds)
            await self.emit(
                SessionPairingCodeEvent(
                    **self._env(),
                    data=SessionPairingCodeData(code=code, expires_at=expires, attempt=self.link_code_count),
                )
            )
        elif self.ready.is_set() or self.status in (SessionStatus.AUTHENTICATED, SessionStatus.READY):
            logger.warning("pairing code event on a linked session ignored", extra={"session_id": self.id, **data})
        elif event_type == "link_code_expired":
            self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason="pairing_code_expired")
        elif event_type == "link_code_error":
            reason = f"pairing_code_error: {str(data.get('message') or 'unknown')[:200]}"
            self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason=reason)

    async def _on_qr(self, code: str) -> None:
        if not code or self.stopping or code == self.last_qr:
            return
        self.last_qr = code
        self.ready.clear()
        self.qr_count += 1
        if self.qr_count > self.settings.qr_refresh_limit:
            self.request_shutdown(save=False, requeue=False, status=SessionStatus.FAILED, reason="qr_timeout")
            return
        self.status = SessionStatus.QR
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.qr_ttl_seconds)
        await self.emit(
            SessionQrEvent(**self._env(), data=SessionQrData(qr=code, expires_at=expires, attempt=self.qr_count))
        )

    async def _on_ready(self) -> None:
        self.qr_count = 0
        first = not self.ready.is_set()
        reconnected = self.status in (SessionStatus.DISCONNECTED, SessionStatus.CONFLICT)
        self.ready.set()
        await self.set_status(SessionStatus.READY, "reconnected" if reconnected else None)
        if first and not self.restored_as_saved:
            self._spawn_aside(self.backup(), "auth save on ready")
        if self.reconcile_since_s is not None:
            since, self.reconcile_since_s = self.reconcile_since_s, None
            self._spawn_aside(self._reconcile(since), "reconcile")

    async def _reconcile(self, since_s: int) -> None:
        """A restored page may hold messages its predecessor stored (and WhatsApp will not send again) but never
        wrote to the outbox: report every recent one; the ones already delivered repeat their event id and ingest
        drops them."""
        assert self.driver is not None
        found = await self.driver.recent_messages(
            since_s, max_chats=self.settings.reconcile_max_chats, per_chat=self.settings.reconcile_per_chat
        )
        for message in found:
            await self._on_message(message)
        self.worker.metrics.reconciled += len(found)
        logger.info(
            "reconciled a restored page", extra={"session_id": self.id, "messages": len(found), "since": since_s}
        )

    async def _on_logout(self) -> None:
        if self.stopping:
            return
        reason = "logout_command" if self.logging_out else (self.logout_reason or "logged_out_from_phone")
        self.request_shutdown(
            save=False, requeue=False, status=SessionStatus.LOGGED_OUT, reason=reason, delete_auth=True
        )

    async def _on_message(self, data: dict[str, Any]) -> None:
        """One event per WhatsApp message: its id is derived from the message's, so a page that fires it again
        (restored, taken over) repeats the same event and ingest drops the repeat."""
        message_id = str(data["id"])
        stamp = data.get("t")
        timestamp = datetime.fromtimestamp(int(stamp), UTC) if stamp else None
        chat = str(data.get("chat") or data.get("from"))
        phone = str(data["phone"]) if data.get("phone") else None
        event: Event
        if data.get("fromMe"):
            if is_api_message(self.id, message_id):
                return  # the page's echo of our own API send: the send path reports it
            event = MessageSentEvent(
                id=whatsapp_event_id(self.id, "sent", message_id),
                **self._env(),
                data=MessageSentData(
                    message_id=message_id,
                    to=chat,
                    chat_id=chat,
                    phone=phone,
                    origin="phone",
                    body=str(data.get("body") or ""),
                    kind=str(data.get("type") or "chat"),
                    timestamp=timestamp,
                ),
            )
        else:
            received = inbound.received_data(self.id, data, chat, phone)
            event = MessageReceivedEvent(
                id=whatsapp_event_id(self.id, "received", message_id), **self._env(), data=received
            )
        await self.emit(event)
        if isinstance(event, MessageReceivedEvent) and event.data.media is not None:
            self._spawn_aside(self._store_media(event.data), "inbound media")
        if isinstance(data.get("seenAt"), int | float):
            # From the page taking the message (WhatsApp will not send it again) to its event being durable: the
            # window in which a SIGKILL of this worker can lose it.
            self.worker.metrics.inbound_to_outbox_ms.append(time.time() * 1000 - float(data["seenAt"]))

    async def _store_media(self, received: MessageReceivedData) -> None:
        """Download an inbound message's media from the page, store it in the media bucket and say so with a
        `message.media` event (available, with a URL; or failed, with the reason). The message itself went out
        before: it is never held back by its media."""
        assert received.media is not None
        pending = received.media
        limit = self.settings.media_max_bytes[inbound.MEDIA_LIMIT_KIND.get(received.kind, "document")]
        try:
            async with media_slots():
                data, served_type = await self._download(received.message_id)
            if len(data) > limit:
                raise MediaUnavailable(f"media_too_large: {len(data)} bytes, over the {limit} bytes limit")
            record = MediaRecord(
                id=pending.id,
                workspace_id=self.workspace_id,
                source="inbound",
                mimetype=pending.mimetype or served_type or "application/octet-stream",
                size=len(data),
                filename=pending.filename,
                sha256=hashlib.sha256(data).hexdigest(),
                s3_key=media_store.object_key(self.workspace_id, pending.id),
            )
            await media_store.write(record, data)
            await media_store.save(self.worker.redis, record)
            seconds = self.settings.media_url_seconds
            info = pending.model_copy(
                update={
                    "status": "available",
                    "mimetype": record.mimetype,
                    "size": record.size,
                    "sha256": record.sha256,
                    "url": await asyncio.to_thread(media_store.presigned_get, record, seconds),
                    "expires_at": datetime.now(UTC) + timedelta(seconds=seconds),
                }
            )
        except MediaUnavailable as exc:
            info = pending.model_copy(update={"status": "failed", "error": exc.reason})
        data_out = MessageMediaData(message_id=received.message_id, chat_id=received.chat_id, media=info)
        event_id = whatsapp_event_id(self.id, "media", received.message_id)
        await self.emit(MessageMediaEvent(id=event_id, **self._env(), data=data_out))

    async def _download(self, message_id: str) -> tuple[bytes, str | None]:
        """The media's bytes from the page; a few tries, as WhatsApp's media servers can be slow to answer."""
        failure: Exception | None = None
        for attempt in range(MEDIA_DOWNLOAD_TRIES):
            if self.driver is None or self.stopping:
                break
            try:
                return await self.driver.download_media(message_id)
            except Exception as exc:
                failure = exc
                await asyncio.sleep(0.5 * 2**attempt)
        raise MediaUnavailable(f"media_download_failed: {str(failure)[:200] if failure else 'the page went away'}")

    async def _on_ack(self, data: dict[str, Any]) -> None:
        ack = ack_from_wa(int(data["ack"]))
        chat = str(data["chat"]) if data.get("chat") else None
        reader = str(data["reader"]) if data.get("reader") else None
        for raw_id in data.get("ids") or []:
            message_id = str(raw_id)
            if ack is Ack.FAILED:
                self._spawn_aside(self._on_error_ack(message_id, chat, int(data["ack"])), "error ack")
                continue
            event_id = whatsapp_event_id(self.id, f"ack:{int(ack)}:{reader or ''}", message_id)
            ack_data = MessageAckData(message_id=message_id, chat_id=chat, ack=ack, reader=reader)
            await self.emit(MessageAckEvent(id=event_id, **self._env(), data=ack_data))

    async def _on_error_ack(self, message_id: str, chat: str | None, raw_ack: int) -> None:
        """An error ack on a sent message: it did not reach WhatsApp, whatever `message.sent` said. A send still
        in flight reports its own failure (with WhatsApp's reason), so wait for it and do not say it twice."""
        in_flight = self.sends_in_flight.get(message_id)
        if in_flight is not None:
            await asyncio.shield(in_flight)
        if message_id in self.failures_reported:
            return
        self.failures_reported.append(message_id)
        failed = MessageFailedData(
            message_id=message_id,
            to=chat or message_id.split("_")[1],
            reason=failure_reason(f"ack_error:{raw_ack}"),
        )
        await self.emit(
            MessageFailedEvent(id=whatsapp_event_id(self.id, "failed", message_id), **self._env(), data=failed)
        )

    # --- emitting ----------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        return {"workspace_id": self.workspace_id, "session_id": self.id}

    async def emit(self, event: Event, **kwargs: Any) -> bool:
        """Fenced write to the outbox. A plain event that cannot be written now (Redis unreachable, or this session
        stopped driving meanwhile) is handed on to the worker's spool, never dropped; a write with a marker or a
        command ack is not handed on (its caller needs the answer, and the command stays pending)."""
        payload = event_to_json(event)
        if not kwargs and (self.handing_on or self.worker.spool.holds(self.id)):
            self.worker.hand_on(self.id, self.lease.fence, event.type, payload)  # in order, behind the spooled ones
            return True
        try:
            result = await self.worker.ownership.emit(self.lease, payload, **kwargs)
        except HAND_ON_WHEN as exc:
            if kwargs:
                raise
            self.worker.hand_on(self.id, self.lease.fence, event.type, payload)
            if isinstance(exc, FencedOff | asyncio.CancelledError):
                raise
            logger.warning("outbox unreachable; event spooled", extra={"session_id": self.id, "error": repr(exc)})
            return True
        if result:  # kept until ingest confirms it: a failover may lose the outbox's last writes
            self.worker.unconfirmed.written(event.id, self.id, self.lease.fence, event.type, payload)
        self.worker.outbox_wake.set()
        return result

    async def set_status(self, status: SessionStatus, reason: str | None = None, *, force: bool = False) -> None:
        if status == self.status and not force and status is not SessionStatus.STARTING:
            return
        self.status = status
        phone = self.phone if status is SessionStatus.READY else None
        await self.emit(
            SessionStatusEvent(**self._env(), data=SessionStatusData(status=status, reason=reason, phone=phone))
        )

    # --- commands ----------------------------------------------------------------------------------------
    async def _command_loop(self) -> None:
        """Serve commands while driving. Redis going away does not end it (that would park the session as failed
        and strand its commands): it starts over once Redis answers, taking over every pending entry again."""
        while not self.stopping:
            try:
                await self._serve_commands()
            except REDIS_UNAVAILABLE as exc:
                logger.warning(
                    "commands: redis unavailable; starting over", extra={"session_id": self.id, "error": repr(exc)}
                )
                await asyncio.sleep(COMMAND_RETRY_SECONDS)
            except PageGone as exc:
                # A browser crash under a send used to end this loop, and the session as failed (internal_error):
                # start over instead; the command, still pending, runs again once the reopened page is ready.
                if self.stopping:
                    return
                logger.warning(
                    "commands: the page went away under a command; it runs again once the page is back",
                    extra={"session_id": self.id, "error": str(exc)},
                )
                await asyncio.sleep(COMMAND_RETRY_SECONDS)

    async def _serve_commands(self) -> None:
        redis = self.worker.redis
        stream = keys.session_commands(self.id)
        try:
            await redis.xgroup_create(stream, COMMANDS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._take_over_pending(stream)
        checked = time.monotonic()
        while not self.stopping:
            response: Any = await redis.xreadgroup(
                COMMANDS_GROUP, self.worker.worker_id, {stream: ">"}, count=10, block=queries.COMMAND_BLOCK_MS
            )
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    await self._run_command(entry_id, fields)
            if time.monotonic() - checked > STALE_PENDING_CHECK_SECONDS:
                checked = time.monotonic()
                await self._take_over_pending(stream)

    async def _take_over_pending(self, stream: str) -> None:
        """Run every entry pending in the group, whoever read it: a previous owner that did not finish it, or this
        worker when a read's reply was lost (Redis delivered the entries, the reply never arrived: they sit pending
        under our own name and no new read returns them). Safe because only the owner calls this, between
        commands: nothing pending is being worked on."""
        redis = self.worker.redis
        me = self.worker.worker_id
        start = "0-0"
        while True:
            result: Any = await redis.xautoclaim(stream, COMMANDS_GROUP, me, min_idle_time=0, start_id=start, count=50)
            start, entries = result[0], result[1]
            for entry_id, fields in entries:
                if fields:
                    await self._run_command(entry_id, fields)
            if start in ("0-0", b"0-0"):
                return

    async def _ack(self, entry_id: str, event: Event | None = None, **kwargs: Any) -> bool:
        if event is None:
            return await self.worker.ownership.emit(self.lease, None, ack_command=entry_id, **kwargs)
        return await self.emit(event, ack_command=entry_id, **kwargs)

    async def _run_command(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            command: Command = parse_command(fields)
        except Exception:
            logger.error("unreadable command acknowledged and skipped", extra={"session_id": self.id})
            await self._ack(entry_id)
            return
        self.worker.metrics.commands += 1
        if isinstance(command, SendTextCommand | SendMessageCommand):
            await self._send(entry_id, command)
        elif isinstance(command, MarkReadCommand | TypingCommand | DeleteMessageCommand | EditMessageCommand):
            await self._page_action(entry_id, command)
        elif isinstance(command, ReadCommand):
            await queries.on_command(self, entry_id, command)
        elif isinstance(command, LogoutCommand):
            await self._ack(entry_id)
            self.logging_out = True
            if self.driver is not None and self.ready.is_set():
                with contextlib.suppress(Exception):
                    await self.driver.logout()
            self.request_shutdown(
                save=False, requeue=False, status=SessionStatus.LOGGED_OUT, reason="logout_command", delete_auth=True
            )
        elif isinstance(command, RestartCommand):
            await self._ack(entry_id)
            await self._restart()
        elif isinstance(command, StopCommand):
            await self._ack(entry_id)
            deleted = not await self.worker.redis.exists(keys.session(self.id)) or await self.worker.redis.hexists(
                keys.session(self.id), "deleted_at_ms"
            )
            self.request_shutdown(
                save=not deleted,
                requeue=False,
                status=SessionStatus.STOPPED,
                reason=command.reason or None,
                delete_auth=bool(deleted),
            )
        elif isinstance(command, RequestPairingCodeCommand):
            await self._ack(entry_id)
            if self.driver is None or self.ready.is_set():
                return
            try:
                # The page emits the code (and every refresh, expiry or error) as events: see _on_link_code.
                await self.driver.start_pairing_code(command.phone)
            except Exception as exc:
                logger.warning("pairing code request failed", extra={"session_id": self.id, "error": repr(exc)})

    async def _page_action(
        self, entry_id: str, command: MarkReadCommand | TypingCommand | DeleteMessageCommand | EditMessageCommand
    ) -> None:
        """Beside sending: done when the session is ready (within the send timeout), else dropped with a warning.
        A delete or an edit that works shows as `message.revoked` / `message.edited` (the page reports it)."""
        try:
            await asyncio.wait_for(self.ready.wait(), self.settings.send_ready_timeout_seconds)
        except TimeoutError:
            logger.warning(
                "page action dropped: session not ready", extra={"session_id": self.id, "command": command.type}
            )
            await self._ack(entry_id)
            return
        assert self.driver is not None
        failure: str | None = None
        try:
            if isinstance(command, MarkReadCommand):
                await self.driver.mark_read(command.chat)
            elif isinstance(command, TypingCommand):
                await self.driver.typing(command.chat, command.state, command.seconds)
            elif isinstance(command, DeleteMessageCommand):
                failure = await self.driver.delete_for_everyone(command.wa_message_id)
            else:
                failure = await self.driver.edit_text(command.wa_message_id, command.text)
        except Exception as exc:
            if self.stopping or not self.ready.is_set() or page_closed(exc):
                raise PageGone(repr(exc)) from exc  # the command stays pending for whoever drives next
            failure = f"{command.type}_failed: {str(exc)[:200]}"
        if failure is not None:
            # Not a message.failed: that would mark the original message failed, and it is still sent.
            logger.warning(
                "page action refused", extra={"session_id": self.id, "command": command.type, "failure": failure}
            )
        await self._ack(entry_id)

    async def _restart(self) -> None:
        async with self._reopen_lock:
            if self.ready.is_set():
                await self.backup()
            self.ready.clear()
            self.restarts += 1
            self.worker.metrics.restarts += 1
            await self.set_status(SessionStatus.STARTING, "restart")
            old, self.browser = self.browser, None
            if old is not None:
                await old.close()
            self.qr_count = 0
            await self._open(await self._load_archive())

    async def _send(self, entry_id: str, command: SendTextCommand | SendMessageCommand) -> None:
        """Send once: done-marker + `message.sent` + XACK in one fenced step; a 'sending' marker (the message's full
        WhatsApp key) set before the send tells a later owner to ask WhatsApp whether it already went out."""
        redis = self.worker.redis
        sent_key = keys.session_sent(self.id, command.client_message_id)
        if await redis.exists(sent_key):
            await self._ack(entry_id)
            await self._dequeue(command.message_id)
            return
        try:
            await asyncio.wait_for(self.ready.wait(), self.settings.send_ready_timeout_seconds)
        except TimeoutError:
            await self._fail_send(entry_id, command, sent_key, "session_not_ready")
            return
        content = command.content if isinstance(command, SendMessageCommand) else None
        try:
            await self._pace(command.to)
            media = await self._media_for(content)
            if content is not None and content.reaction is not None:
                result = await self._react(content.reaction.message_id, content.reaction.emoji)
            else:
                result = await self._send_once(command, content, media)
        except MediaUnavailable as exc:
            await self._fail_send(entry_id, command, sent_key, exc.reason)
            return
        except REDIS_UNAVAILABLE:
            raise  # Redis trouble is not the send's failure: the command stays pending and is taken again
        except Exception as exc:
            if self.stopping or not self.ready.is_set() or page_closed(exc):
                raise PageGone(repr(exc)) from exc  # mid-send: the command stays pending for whoever drives next
            await self._fail_send(entry_id, command, sent_key, f"send_failed: {str(exc)[:200]}")
            return
        if result.failure is not None:
            await self._fail_send(entry_id, command, sent_key, failure_reason(result.failure), result.message_id)
            return
        event = MessageSentEvent(
            **self._env(),
            data=MessageSentData(
                message_id=result.message_id,
                client_message_id=command.client_message_id,
                gateway_message_id=command.message_id,
                to=command.to,
                chat_id=result.message_id.split("_")[1],
                phone=phone_of(command.to),
                kind=content.type if content is not None else None,
                ack=ack_from_wa(result.ack),
            ),
        )
        await self._ack(entry_id, event, marker_key=sent_key, marker_value=result.message_id)
        self.worker.metrics.messages_sent += 1
        await self._dequeue(command.message_id)

    async def _pace(self, to: str) -> None:
        """Anti-ban pacing: one send per gap (+ jitter), so a burst waits in the queue instead of hitting WhatsApp
        at once; with `typing_before_send` the contact sees typing while the send waits its turn."""
        pacing = await self._pacing()
        wait = self.next_send_at - time.monotonic()
        if pacing.typing_before_send and self.driver is not None:
            seconds = min(max(wait, TYPING_BEFORE_SEND_MIN_SECONDS), TYPING_BEFORE_SEND_MAX_SECONDS)
            with contextlib.suppress(Exception):
                await self.driver.typing(to, "composing", seconds)
            wait = max(wait, seconds)
        if wait > 0:
            await asyncio.sleep(wait)
        self.next_send_at = time.monotonic() + (pacing.gap_ms + random.uniform(0, pacing.jitter_ms)) / 1000

    async def _pacing(self) -> Pacing:
        """The workspace's pacing (its overrides of the defaults), read at most every PACING_CACHE_SECONDS."""
        now = time.monotonic()
        if self.pacing is None or now - self.pacing_read_at > PACING_CACHE_SECONDS:
            workspace = await workspaces.get_workspace(self.worker.redis, self.workspace_id)
            self.pacing = Pacing.of(self.settings, workspace)
            self.pacing_read_at = now
        return self.pacing

    async def _dequeue(self, message_id: str) -> None:
        """The message left the session's send queue (sent, failed or found done): its place is free again."""
        try:
            await self.worker.redis.zrem(keys.send_queue(self.id), message_id)
        except RedisError as exc:
            # Only the queue's bound counts it; a tenant's GET of the queue skips messages no longer queued.
            logger.warning("send queue entry left behind", extra={"session_id": self.id, "error": repr(exc)})

    async def _media_for(self, content: OutgoingContent | None) -> MediaPayload | None:
        if content is None or content.media is None:
            return None
        limit = self.settings.media_max_bytes[content.type]
        return await resolve_media(content.media, workspace_id=self.workspace_id, max_bytes=limit)

    async def _react(self, target: str, emoji: str) -> SendResult:
        """A reaction has no key of ours and setting it again changes nothing: no marker, no lookup."""
        assert self.driver is not None
        return SendResult(target, int(Ack.SENT), await self.driver.react(target, emoji))

    async def _send_once(
        self, command: SendTextCommand | SendMessageCommand, content: OutgoingContent | None, media: MediaPayload | None
    ) -> SendResult:
        """Resolve the chat (a phone's chat may be a LID), key the message on it, and send unless an earlier
        attempt (this owner's or a previous one's) already handed it to WhatsApp."""
        assert self.driver is not None
        sending_key = keys.session_sending(self.id, command.client_message_id)
        chat, key = await self.driver.resolve_chat(command.to, api_message_suffix(self.id, command.client_message_id))
        first_attempt = await self.worker.ownership.emit(self.lease, None, marker_key=sending_key, marker_value=key)
        if not first_attempt:
            key = str(await self.worker.redis.get(sending_key) or key)  # the key the earlier attempt used
            chat = key.split("_")[1]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sends_in_flight[key] = done
        try:
            result = await self._find_or_send(first_attempt, chat, key, command, content, media)
            if result.failure is not None:
                self.failures_reported.append(key)
            return result
        finally:
            self.sends_in_flight.pop(key, None)
            done.set_result(None)

    async def _find_or_send(
        self,
        first_attempt: bool,
        chat: str,
        key: str,
        command: SendTextCommand | SendMessageCommand,
        content: OutgoingContent | None,
        media: MediaPayload | None,
    ) -> SendResult:
        assert self.driver is not None
        if not first_attempt:
            existing = await self.driver.find_message(key)
            if existing.found:
                ack = existing.ack if existing.ack is not None else 0
                return SendResult(key, ack, f"ack_error:{ack}" if ack < 0 else None)
        if content is None:
            assert isinstance(command, SendTextCommand)
            return await self.driver.send_text(chat, command.text, key)
        page_media = media.for_page() if media is not None else None
        return await self.driver.send_content(chat, key, content.model_dump(mode="json"), page_media)

    async def _fail_send(
        self,
        entry_id: str,
        command: SendTextCommand | SendMessageCommand,
        sent_key: str,
        reason: str,
        message_id: str | None = None,
    ) -> None:
        event_id = whatsapp_event_id(self.id, "failed", message_id) if message_id else new_event_id()
        event = MessageFailedEvent(
            id=event_id,
            **self._env(),
            data=MessageFailedData(
                message_id=message_id,
                client_message_id=command.client_message_id,
                gateway_message_id=command.message_id,
                to=command.to,
                reason=reason,
            ),
        )
        await self._ack(entry_id, event, marker_key=sent_key, marker_value="failed")
        await self._dequeue(command.message_id)
