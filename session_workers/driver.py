"""The WhatsApp driver: speaks only `window.WPP` (@wppconnect/wa-js names), on the real site and the simulator.

On web.whatsapp.com the wa-js bundle is injected with `add_init_script` (it survives WhatsApp's CSP), with Google
Analytics and third-party link-preview servers off; the simulator page brings its own `window.WPP`. Either way a
bridge script (also an init script, so it survives reloads) waits for `WPP.isReady`, subscribes to the events we
need and forwards them through one exposed binding; calls go through `page.evaluate` on `WPP.*`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playwright.async_api import BrowserContext, CDPSession, Page

from shared.observability import logger
from shared.settings import Settings

BINDING = "__wagwEmit"

WPP_CONFIG_JS = """
window.WPPConfig = Object.assign(window.WPPConfig || {}, {
  disableGoogleAnalytics: true,
  googleAnalyticsId: null,
  linkPreviewApiServers: [],
  sendStatusToDevice: false,
});
"""

BRIDGE_JS = """
(() => {
  if (window.__wagwBridge) return;
  window.__wagwBridge = true;
  const send = (type, data) => {
    try { window.__wagwEmit(type, data === undefined ? null : data); } catch (err) { /* page closing */ }
  };
  const str = (v) => (v == null ? null : (v._serialized || String(v)));
  const attempt = (fn, fallback) => { try { return fn(); } catch (err) { return fallback; } };
  const me = () => attempt(() => str(WPP.conn.getMyUserId()), null);
  const myLid = () => attempt(() => str(WPP.conn.getMyUserLid()), null);
  // Logged in and usable = authenticated AND stream mode MAIN. `conn.main_ready` is NOT that: wa-js fires it once
  // per page load on the first mode MAIN *or QR* (conn/events/registerMainReadyEvent.ts).
  const connState = () => ({
    authenticated: attempt(() => !!WPP.conn.isAuthenticated(), false),
    mode: attempt(() => WPP.conn.getStreamData().mode, null),
    phone: me(),
  });
  let lastState = '';
  const reportState = (why) => {
    const state = connState();
    const key = state.authenticated + '|' + state.mode;
    if (key === lastState && why === 'watch') return;
    lastState = key;
    send('state', Object.assign(state, { why }));
  };
  const versions = () => ({
    wa_js: attempt(() => String(WPP.version), null),
    whatsapp: attempt(() => { const b = WPP.conn.getBuildConstants(); return b && b.VERSION_STR; }, null)
      || attempt(() => String(window.Debug.VERSION), null),
  });
  // Events leave in the order they happened even when one waits for a LID lookup.
  let chain = Promise.resolve();
  const inOrder = (fn) => { chain = chain.then(fn).catch(() => undefined); };
  const phoneOf = async (id) => {
    if (!id) return null;
    if (/@c\\.us$/.test(id)) return id.split('@')[0];
    if (!/@lid$/.test(id)) return null;
    try {
      const entry = await WPP.contact.getPnLidEntry(id);
      return entry && entry.phoneNumber ? entry.phoneNumber.id : null;
    } catch (err) { return null; }
  };
  // A receipt's MsgKey carries the reader as participant in groups (registerAckMessageEvent.ts); our sent key
  // in a group carries our own LID instead (generateMessageID.ts). Map the receipt back to the sent message.
  const ownKey = (chat, serialized) => {
    const parts = String(serialized).split('_');
    const remote = chat || parts[1];
    const base = 'true_' + remote + '_' + parts[2];
    return /@g\\.us$/.test(remote) && myLid() ? base + '_' + myLid() : base;
  };
  // A media Msg's `body` is its thumbnail (base64), not text: it is dropped; the caption is kept apart.
  const MEDIA_TYPES = ['image', 'video', 'audio', 'ptt', 'document', 'sticker'];
  const shape = (m) => {
    const media = MEDIA_TYPES.includes(m.type);
    return {
      id: str(m.id), fromMe: !!m.id.fromMe, chat: str(m.id.remote),
      from: m.id.fromMe ? me() : (str(m.author) || str(m.from)),
      body: !media && typeof m.body === 'string' ? m.body : '', type: m.type || 'chat', t: m.t || null,
      caption: typeof m.caption === 'string' && m.caption ? m.caption : null,
      quoted: m.quotedMsgId ? str(m.quotedMsgId) : null,
      mentions: (m.mentionedJidList || []).map(str),
      location: typeof m.lat === 'number' && typeof m.lng === 'number'
        ? { lat: m.lat, lng: m.lng, loc: m.loc || null } : null,
      media: media ? { mimetype: m.mimetype || null, size: m.size || null, filename: m.filename || null } : null,
    };
  };
  const withPhone = async (msg) => Object.assign(msg, { phone: await phoneOf(msg.fromMe ? msg.chat : msg.from) });
  // The same shape for messages read back from the page's store (a taken-over session's reconciliation).
  window.__wagwMessage = async (m) => withPhone(shape(m));
  const snapshot = async () => {
    let code = null;
    try { const c = await WPP.conn.getAuthCode(); code = c && c.fullCode; } catch (err) { /* not in QR mode */ }
    return Object.assign(connState(), { qr: code, versions: versions() });
  };
  let hooked = null;
  const hook = (W) => {
    if (!W || hooked === W || typeof W.on !== 'function') return;
    hooked = W;
    subscribe(W);
    const ready = () => {
      if (hooked !== W) return;
      if (W.isReady) {
        watchFailedAcks(W);
        snapshot().then((state) => {
          lastState = state.authenticated + '|' + state.mode;
          send('attached', state);
        });
        // Belt and braces: WhatsApp does not promise the order of authentication and stream mode changes.
        setInterval(() => reportState('watch'), 2000);
      } else setTimeout(ready, 50);
    };
    ready();
  };
  const subscribe = (W) => {
    W.on('conn.auth_code_change', (c) => { if (c && c.fullCode) send('qr', { code: c.fullCode }); });
    W.on('conn.qrcode_idle', () => send('qr_idle'));
    W.on('conn.authenticated', () => reportState('authenticated'));
    W.on('conn.stream_mode_changed', () => reportState('mode'));
    W.on('conn.main_ready', () => reportState('main_ready'));
    W.on('conn.link_code_change', (code) => send('link_code', { code: String(code) }));
    W.on('conn.link_code_expired', () => send('link_code_expired'));
    W.on('conn.link_code_error', (err) => send('link_code_error', { message: String((err && err.message) || err) }));
    W.on('conn.logout_reason', (reason) => send('logout_reason', { reason: String(reason) }));
    W.on('conn.logout', () => send('logout'));
    W.on('chat.new_message', (m) => {
      // An encrypted message fires first as 'ciphertext' with no body, then again decrypted with the same id
      // (chat/events/registerNewMessageEvent.ts): only the decrypted one is a message.
      if (!m || !m.id || m.type === 'ciphertext') return;
      const msg = Object.assign(shape(m), { seenAt: Date.now() });  // now: the Msg may change after it fired
      inOrder(async () => send('message', await withPhone(msg)));
    });
    W.on('chat.new_reaction', (r) => inOrder(() => send('reaction', {
      id: str(r.id), target: str(r.msgId), emoji: r.reactionText || '', sender: str(r.sender), t: r.timestamp || null,
    })));
    W.on('chat.msg_edited', (e) => inOrder(() => send('edited', {
      id: e.msg && e.msg.id ? str(e.msg.id) : String(e.id), chat: str(e.chat),
      body: e.msg && typeof e.msg.body === 'string' ? e.msg.body : '',
    })));
    W.on('chat.msg_revoke', (e) => inOrder(() => send('revoked', {
      id: str(e.refId), chat: str(e.refId && e.refId.remote) || str(e.from), type: e.type, author: str(e.author),
    })));
    W.on('chat.presence_change', (p) => send('presence', { chat: str(p.id), state: String(p.state || '') }));
    W.on('group.participant_changed', (g) => inOrder(() => send('group', {
      group: String(g.groupId), action: String(g.action), participants: (g.participants || []).map(str),
      author: g.author ? String(g.author) : null,
    })));
    W.on('call.incoming_call', (c) => inOrder(() => send('call', {
      id: String(c.id), from: str(c.sender) || str(c.peerJid), video: !!c.isVideo, group: !!c.isGroup,
      t: c.offerTime || null,
    })));
    W.on('chat.msg_ack_change', (a) => {
      if (!a) return;
      const chat = str(a.chat);
      const reader = a.sender ? str(a.sender) : null;
      inOrder(() => send('ack', { ack: a.ack, chat, reader, ids: (a.ids || []).map((id) => ownKey(chat, str(id))) }));
    });
  };
  // A failed ack (-1 and below) is never a chat.msg_ack_change (registerAckMessageEvent.ts emits ack 1 from
  // the MsgStore and receipts >= 2): it shows only on the Msg, so watch WhatsApp's MsgStore for it. The store
  // exists only once wa-js has found WhatsApp's modules (WPP.isReady).
  const watchFailedAcks = (W) => {
    try {
      W.whatsapp.MsgStore.on('change:ack', (m) => {
        if (m && m.id && m.id.fromMe && typeof m.ack === 'number' && m.ack < 0) {
          inOrder(() => send('ack', { ack: m.ack, chat: str(m.id.remote), reader: null, ids: [str(m.id)] }));
        }
      });
    } catch (err) { /* a wa-js without the store export: failures still show in the send result */ }
  };
  let current = window.WPP;
  try {
    Object.defineProperty(window, 'WPP', {
      configurable: true,
      enumerable: true,
      get() { return current; },
      set(value) { current = value; hook(value); },
    });
  } catch (err) { /* not configurable: the poll below finds it */ }
  if (current) hook(current);
  const poll = () => {
    if (window.WPP) hook(window.WPP);
    if (!(hooked && hooked.isReady && window.WPP === hooked)) setTimeout(poll, 100);
  };
  poll();
})();
"""

# chat/functions/find.ts resolves the chat WhatsApp really uses (often `<digits>@lid` for a `<phone>@c.us`), and
# prepareRawMessage.ts refuses a messageId whose remote is not that chat: the key is built on the resolved chat.
RESOLVE_JS = """
async ([to, suffix]) => {
  const chat = await WPP.chat.find(to);
  const chatId = String(chat.id._serialized || chat.id);
  let key = 'true_' + chatId + '_' + suffix;
  if (/@g\\.us$/.test(chatId)) {
    const lid = WPP.conn.getMyUserLid();
    key += '_' + String(lid._serialized || lid);
  }
  return { chat: chatId, key };
}
"""

# sendRawMessage.ts resolves `sendMsgResult: {messageSendResult}` instead of throwing; defaults mark the chat read
# (chat/defaultSendMessageOptions.ts: markIsRead true): reading is the tenant's choice, never a side effect.
SEND_JS = """
async ([chatId, text, messageId]) => {
  const r = await WPP.chat.sendTextMessage(chatId, text, {
    messageId, linkPreview: false, markIsRead: false, waitForAck: true, detectMentioned: false,
  });
  const settled = await r.sendMsgResult;  // a resolved object in 4.6.0; awaiting also covers older promises
  const outcome = settled && settled.messageSendResult ? settled.messageSendResult : settled;
  return {
    id: String(r.id && r.id._serialized ? r.id._serialized : r.id),
    ack: typeof r.ack === 'number' ? r.ack : 0,
    result: outcome == null ? null : String(outcome),
  };
}
"""

# Every other type of message (chat/functions/sendFileMessage.ts, sendLocationMessage.ts,
# sendVCardContactMessage.ts), keyed like a text; media arrives as base64 and goes in as a data URL.
SEND_CONTENT_JS = """
async ([chatId, messageId, c, media]) => {
  const opts = { messageId, markIsRead: false, waitForAck: true, detectMentioned: false, linkPreview: false };
  if (c.reply_to) opts.quotedMsg = c.reply_to;
  if (c.mentions && c.mentions.length) opts.mentionedList = c.mentions.map((m) => (m.includes('@') ? m : m + '@c.us'));
  const fileType = {
    image: 'image', video: 'video', audio: 'audio', voice: 'audio', document: 'document', sticker: 'sticker',
  };
  let r;
  if (c.type === 'text') {
    r = await WPP.chat.sendTextMessage(chatId, c.text, opts);
  } else if (fileType[c.type]) {
    r = await WPP.chat.sendFileMessage(chatId, 'data:' + media.mimetype + ';base64,' + media.data, Object.assign(opts, {
      type: fileType[c.type], isPtt: c.type === 'voice', caption: c.text || undefined,
      filename: media.filename || undefined, mimetype: media.mimetype,
    }));
  } else if (c.type === 'location') {
    const l = c.location;
    r = await WPP.chat.sendLocationMessage(chatId, Object.assign(opts, {
      lat: l.latitude, lng: l.longitude, name: l.name || undefined, address: l.address || undefined,
      url: l.url || undefined,
    }));
  } else if (c.type === 'contact') {
    r = await WPP.chat.sendVCardContactMessage(chatId, { id: c.contact.phone + '@c.us', name: c.contact.name }, opts);
  } else {
    throw new Error('unknown message type ' + c.type);
  }
  const settled = await r.sendMsgResult;
  const outcome = settled && settled.messageSendResult ? settled.messageSendResult : settled;
  return {
    id: String(r.id && r.id._serialized ? r.id._serialized : r.id),
    ack: typeof r.ack === 'number' ? r.ack : 0,
    result: outcome == null ? null : String(outcome),
  };
}
"""

# chat/functions/sendReactionToMessage.ts: no key of ours (a reaction has none) and only `{sendMsgResult}` back;
# an empty reaction removes it. Sending the same reaction again changes nothing, so a resend is harmless.
REACT_JS = """
async ([target, emoji]) => {
  const r = await WPP.chat.sendReactionToMessage(target, emoji || false);
  const settled = await r.sendMsgResult;
  const outcome = settled && settled.messageSendResult ? settled.messageSendResult : settled;
  return { result: outcome == null ? null : String(outcome) };
}
"""

FIND_JS = """
async (id) => {
  try {
    const m = await WPP.chat.getMessageById(id);
    return { found: true, ack: typeof m.ack === 'number' ? m.ack : 0 };
  } catch (err) {
    const code = err && err.code;
    if (code === 'msg_not_found' || code === 'chat_not_found') return { found: false, ack: null };
    throw err;
  }
}
"""

# A restored page holds the messages its predecessor stored: read back the recent ones (chat/functions/list.ts,
# getMessages.ts) in the bridge's message shape; their events carry ids derived from WhatsApp's, so ingest drops
# every one that was already delivered.
RECENT_MESSAGES_JS = """
async ([since, maxChats, perChat]) => {
  const out = [];
  for (const chat of await WPP.chat.list({ count: maxChats })) {
    if ((chat.t || 0) < since) continue;
    for (const m of await WPP.chat.getMessages(chat.id, { count: perChat })) {
      if (m && m.id && m.type !== 'ciphertext' && (m.t || 0) >= since) out.push(await window.__wagwMessage(m));
    }
  }
  return out;
}
"""

# chat/functions/downloadMedia.ts -> a Blob (wa-js 4.6.0 copies it out of WhatsApp's media cache: a new Blob). Its
# bytes leave the page without any script touching them: the browser reads the Blob itself (CDP `IO.resolveBlob`,
# `IO.read`: base64 made in C++). Returning it from `page.evaluate` as a base64 string built in JS cost the page's
# renderer about 24 ms of CPU per MiB more (the string, its binary twin, and their serialisation: measured in
# docs/benchmarks.md, Media). Errors come back as Errors with wa-js's code (it also throws plain objects).
DOWNLOAD_EXPRESSION = """
(async (id) => {
  try {
    return await WPP.chat.downloadMedia(id);
  } catch (err) {
    const code = err && err.code ? String(err.code) + ': ' : '';
    throw new Error(code + String((err && err.message) || err));
  }
})(%s)
"""
BLOB_READ_CHUNK = 8 * 1024 * 1024  # one IO.read answer at most (base64 in one protocol message): 1-2 MB images in one


class BlobUnreadable(Exception):
    """The page's expression threw, or gave something that is not a Blob."""


async def read_blob(cdp: CDPSession, expression: str) -> tuple[bytes, str | None]:
    """Evaluate `expression` (a Blob, or a promise of one) in the page's main world and read the Blob's bytes
    through the browser: (bytes, the Blob's type). The page's handle is held until the read ends: once the page
    no longer references the Blob the browser may drop its data before `IO.read` opens it ("Read failed", seen
    under load in bench/media.py's baseline when the handle was released before the read)."""
    group = "wagw-blob-" + secrets.token_hex(6)  # per call: downloads run side by side in one page
    try:
        reply = await cdp.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "objectGroup": group}
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            thrown = details.get("exception") or {}
            raise BlobUnreadable(str(thrown.get("description") or details.get("text") or "the page threw"))
        blob = reply["result"]
        if blob.get("className") != "Blob" or "objectId" not in blob:
            raise BlobUnreadable(f"the page gave {blob.get('className') or blob.get('type')}, not a Blob")
        described = await cdp.send(
            "Runtime.callFunctionOn",
            {
                "objectId": blob["objectId"],
                "functionDeclaration": "function () { return this.type || null; }",
                "returnByValue": True,
            },
        )
        mimetype = described["result"].get("value")
        handle = "blob:" + (await cdp.send("IO.resolveBlob", {"objectId": blob["objectId"]}))["uuid"]
        return await read_stream(cdp, handle), str(mimetype) if mimetype else None
    finally:
        with contextlib.suppress(Exception):  # the page may be gone: its objects went with it
            await cdp.send("Runtime.releaseObjectGroup", {"objectGroup": group})


async def read_stream(cdp: CDPSession, handle: str) -> bytes:
    """Every byte of a CDP IO stream, which is closed after."""
    chunks: list[bytes] = []
    try:
        while True:
            part = await cdp.send("IO.read", {"handle": handle, "size": BLOB_READ_CHUNK})
            data = part.get("data") or ""
            chunks.append(base64.b64decode(data) if part.get("base64Encoded") else data.encode())
            if part.get("eof"):
                return b"".join(chunks)
    finally:
        with contextlib.suppress(Exception):
            await cdp.send("IO.close", {"handle": handle})


VERSIONS_JS = """
() => {
  const attempt = (fn) => { try { return fn(); } catch (err) { return null; } };
  return {
    wa_js: attempt(() => (window.WPP ? String(WPP.version) : null)),
    whatsapp: attempt(() => { const b = WPP.conn.getBuildConstants(); return b && b.VERSION_STR; })
      || attempt(() => String(window.Debug.VERSION)),
    wpp_present: !!window.WPP,
    wpp_ready: !!(window.WPP && WPP.isReady),
  };
}
"""

API_ID_PREFIX = "3EB0"


@dataclass(frozen=True)
class SendResult:
    """What WhatsApp said of a send: `failure` is a reason when it did not go out (never raised by wa-js)."""

    message_id: str
    ack: int
    failure: str | None


@dataclass(frozen=True)
class ExistingMessage:
    found: bool
    ack: int | None


def chat_id(to: str) -> str:
    """A phone number or a chat id -> a WhatsApp chat id (before WhatsApp resolves it, e.g. to a LID)."""
    if "@" in to:
        return to
    return "".join(ch for ch in to if ch.isdigit()) + "@c.us"


def _check(session_id: str, head: str) -> str:
    return hashlib.sha256(f"wagw\x00{session_id}\x00{head}".encode()).hexdigest()[:8].upper()


def api_message_suffix(session_id: str, client_message_id: str) -> str:
    """The id part of an API send's WhatsApp key: derived from (session, client message id), so a resend is
    recognised, and self-checking, so the page's own echo of it (`chat.new_message`, fromMe) is told apart from a
    message typed on the phone without a lookup."""
    head = hashlib.sha256(f"{session_id}\x00{client_message_id}".encode()).hexdigest()[:12].upper()
    return f"{API_ID_PREFIX}{head}{_check(session_id, head)}"


def is_api_message(session_id: str, serialized_id: str) -> bool:
    """True for a key this gateway generated for an API send of this session."""
    parts = serialized_id.split("_")
    if len(parts) < 3:
        return False
    key = parts[2]
    head = key[len(API_ID_PREFIX) : len(API_ID_PREFIX) + 12]
    return len(key) == 24 and key.startswith(API_ID_PREFIX) and key[16:] == _check(session_id, head)


def send_failure(result: str | None, ack: int) -> str | None:
    """A send's outcome as wa-js returns it -> a reason when it failed, None when it went out."""
    if result is not None and result != "OK":
        return f"send_result:{result}"
    if ack < 0:
        return f"ack_error:{ack}"
    return None


def should_inject(settings: Settings) -> bool:
    if settings.wa_js_inject == "always":
        return True
    if settings.wa_js_inject == "never":
        return False
    host = urlparse(settings.whatsapp_url).hostname or ""
    return host == "whatsapp.com" or host.endswith(".whatsapp.com")


def page_closed(exc: BaseException) -> bool:
    """The call failed because the page, its context or the browser is gone (Playwright's TargetClosedError, which
    its public API does not export), not because the page refused it."""
    return type(exc).__name__ == "TargetClosedError" or "has been closed" in str(exc)


class WhatsAppDriver:
    """One session's page. `on_event(type, data)` gets bridge events; `on_crash()` a renderer crash."""

    def __init__(
        self,
        settings: Settings,
        on_event: Callable[[str, dict[str, Any]], None],
        on_crash: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_crash = on_crash
        self.page: Page | None = None
        self._cdp: tuple[Page, CDPSession] | None = None

    async def attach(self, context: BrowserContext) -> None:
        """Install the scripts and the binding on a fresh context (before any page exists)."""
        if should_inject(self.settings):
            bundle = Path(self.settings.wa_js_path)
            if not await asyncio.to_thread(bundle.exists):
                raise FileNotFoundError(f"wa-js bundle not found at {bundle} (npm ci installs it)")
            await context.add_init_script(script=WPP_CONFIG_JS)
            await context.add_init_script(path=bundle)
        await context.expose_binding(BINDING, self._binding)
        await context.add_init_script(script=BRIDGE_JS)

    def _binding(self, _source: Any, event_type: str, data: Any = None) -> None:
        self.on_event(str(event_type), data if isinstance(data, dict) else {})

    async def open_page(self, context: BrowserContext, page: Page | None = None) -> None:
        """Load the site in `page` (a page already open in the context, e.g. the one its storage was restored
        from, which saves starting another renderer) or in a new page."""
        if page is None:
            page = await context.new_page()
        page.on("crash", lambda _: self.on_crash())
        self.page = page
        await page.goto(self.settings.whatsapp_url, wait_until="domcontentloaded")

    async def reopen_page(self, context: BrowserContext) -> None:
        """After a renderer crash: close the dead page, open a new one in the same context."""
        if self.page is not None:
            try:
                await self.page.close()
            except Exception as exc:
                logger.debug("closing a crashed page failed", extra={"error": repr(exc)})
        await self.open_page(context)

    def _page(self) -> Page:
        if self.page is None:
            raise RuntimeError("no page")
        return self.page

    async def resolve_chat(self, to: str, suffix: str) -> tuple[str, str]:
        """(the chat WhatsApp uses for `to`, the full key of our message with id `suffix` in it)."""
        result = await self._page().evaluate(RESOLVE_JS, [chat_id(to), suffix])
        return str(result["chat"]), str(result["key"])

    async def send_text(self, resolved_chat: str, text: str, message_key: str) -> SendResult:
        result = await self._page().evaluate(SEND_JS, [resolved_chat, text, message_key])
        ack = int(result["ack"])
        return SendResult(str(result["id"]), ack, send_failure(result.get("result"), ack))

    async def send_content(
        self, resolved_chat: str, message_key: str, content: dict[str, Any], media: dict[str, Any] | None
    ) -> SendResult:
        result = await self._page().evaluate(SEND_CONTENT_JS, [resolved_chat, message_key, content, media])
        ack = int(result["ack"])
        return SendResult(str(result["id"]), ack, send_failure(result.get("result"), ack))

    async def react(self, target_message_id: str, emoji: str) -> str | None:
        """React to a message (empty: remove the reaction); returns a failure, or None when it went out."""
        result = await self._page().evaluate(REACT_JS, [target_message_id, emoji])
        return send_failure(result.get("result"), 0)

    async def mark_read(self, chat: str) -> None:
        """chat/functions/markIsRead.ts: the contact sees the blue ticks, the phone clears the chat's unread count."""
        await self._page().evaluate("async (c) => { await WPP.chat.markIsRead(c); }", chat_id(chat))

    async def typing(self, chat: str, state: str, seconds: float) -> None:
        """chat/functions/markIsComposing.ts / markIsRecording.ts take a duration; markIsPaused stops it."""
        await self._page().evaluate(
            """async ([c, state, ms]) => {
              if (state === 'paused') await WPP.chat.markIsPaused(c);
              else if (state === 'recording') await WPP.chat.markIsRecording(c, ms);
              else await WPP.chat.markIsComposing(c, ms);
            }""",
            [chat_id(chat), state, int(seconds * 1000)],
        )

    async def delete_for_everyone(self, message_key: str) -> str | None:
        """chat/functions/deleteMessage.ts (chat, id, deleteMediaInDevice, revoke): a failure, or None."""
        result = await self._page().evaluate(
            """async ([c, id]) => {
              const r = await WPP.chat.deleteMessage(c, id, false, true);
              return { result: String(r.sendMsgResult), revoked: !!r.isRevoked };
            }""",
            [message_key.split("_")[1], message_key],
        )
        return send_failure(result.get("result"), 0 if result.get("revoked") else -1)

    async def edit_text(self, message_key: str, text: str) -> str | None:
        """chat/functions/editMessage.ts (it too marks the chat read unless told not to): a failure, or None."""
        result = await self._page().evaluate(
            """async ([id, t]) => {
              const r = await WPP.chat.editMessage(id, t, { markIsRead: false, waitForAck: true });
              const settled = await r.sendMsgResult;
              const outcome = settled && settled.messageSendResult ? settled.messageSendResult : settled;
              return { result: outcome == null ? null : String(outcome), ack: typeof r.ack === 'number' ? r.ack : 0 };
            }""",
            [message_key, text],
        )
        return send_failure(result.get("result"), int(result.get("ack") or 0))

    async def find_message(self, message_key: str) -> ExistingMessage:
        result = await self._page().evaluate(FIND_JS, message_key)
        ack = result.get("ack")
        return ExistingMessage(bool(result["found"]), None if ack is None else int(ack))

    async def logout(self) -> bool:
        return bool(await self._page().evaluate("async () => !!(await WPP.conn.logout())"))

    async def start_pairing_code(self, phone: str) -> str:
        """The managed lifecycle (conn/functions/linkDeviceCodeLifecycle.ts): the page emits every new code,
        its expiry and its errors; `genLinkDeviceCodeForPhoneNumber` would return one code and emit nothing."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        return str(
            await self._page().evaluate(
                "async (p) => await WPP.conn.startLinkDeviceCodeForPhoneNumber(p, true)", digits
            )
        )

    async def recent_messages(self, since_s: int, *, max_chats: int, per_chat: int) -> list[dict[str, Any]]:
        """Messages the page holds in its store that are at least as new as `since_s` (Unix seconds)."""
        return list(await self._page().evaluate(RECENT_MESSAGES_JS, [since_s, max_chats, per_chat]))

    async def download_media(self, message_id: str) -> tuple[bytes, str | None]:
        """An inbound message's media: (bytes, mimetype WhatsApp gave)."""
        cdp = await self._media_cdp()
        try:
            return await read_blob(cdp, DOWNLOAD_EXPRESSION % json.dumps(message_id))
        finally:
            # The page's fetch of the media also left a copy in the context's HTTP cache, which for these
            # off-the-record contexts lives in the browser's memory, up to 50 MB per context: +455 MiB for 10
            # sessions in bench/media.py, kept for good (docs/benchmarks.md, Media). Cookies and storage stay.
            with contextlib.suppress(Exception):
                await cdp.send("Network.clearBrowserCache")

    async def _media_cdp(self) -> CDPSession:
        """A CDP session on the current page for media reads (a new one after the page was replaced)."""
        page = self._page()
        if self._cdp is None or self._cdp[0] is not page:
            self._cdp = (page, await page.context.new_cdp_session(page))
        return self._cdp[1]

    async def reject_call(self, call_id: str) -> None:
        await self._page().evaluate("async (id) => { await WPP.call.reject(id); }", call_id)

    async def versions(self) -> dict[str, Any]:
        """wa-js's and WhatsApp Web's versions, and whether WPP is there and ready (works when it is not)."""
        return dict(await self._page().evaluate(VERSIONS_JS))

    # --- reads (GET /v1/sessions/{id}/contacts, chats, messages, groups): session_workers/queries.py ---------
    async def _read(self, script: str, argument: Any) -> Any:
        result = await self._page().evaluate(script, argument)
        if "error" in result:
            raise PageRefused(str(result["error"]), str(result.get("message") or ""))
        return result["ok"]

    async def check_contact(self, phone: str) -> dict[str, Any]:
        """contact/functions/queryWidExists.ts: on WhatsApp or not (null), its wid, LID and business flag."""
        return dict(await self._read(CONTACT_CHECK_JS, chat_id(phone)))

    async def chats(self, after_chat: str | None, count: int) -> list[dict[str, Any]]:
        """chat/functions/list.ts: `count` chats in WhatsApp's order, from `after_chat` (included) when given."""
        return list(await self._read(CHATS_JS, [after_chat, count]))

    async def chat_messages(self, chat: str, before_message: str | None, count: int) -> list[dict[str, Any]]:
        """chat/functions/getMessages.ts: up to `count` messages before `before_message` (excluded), or the newest
        ones (up to the chat's lastReceivedKey, included), oldest first."""
        return list(await self._read(MESSAGES_JS, [chat, before_message, count]))

    async def groups(self) -> list[dict[str, Any]]:
        """group/functions/getAllGroups.ts: every group the account is in."""
        return list(await self._read(GROUPS_JS, None))

    async def group_participants(self, group: str) -> list[dict[str, Any]]:
        """group/functions/getParticipants.ts: the members, with their phone number where WhatsApp knows it."""
        return list(await self._read(PARTICIPANTS_JS, group))


class PageRefused(Exception):
    """wa-js threw a WPPError (`code`: chat_not_found, not_a_group, invalid_wid, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


# Reads. Each returns {ok} or {error: WPPError code, message}; ids leave the page serialized.
READ_HELPERS_JS = """
  const s = (w) => (w == null ? null : String(w._serialized || w));
  const fail = (err) => ({ error: (err && err.code) || 'failed', message: String((err && err.message) || err) });
"""

# contact/functions/queryWidExists.ts: null for a number not on WhatsApp (also when WhatsApp did not answer: it
# catches the server's error); `lid` from the LID/PN cache (getPnLidEntry.ts asks the server only when it has none).
CONTACT_CHECK_JS = f"""
async (id) => {{
  {READ_HELPERS_JS}
  try {{
    const found = await WPP.contact.queryWidExists(id);
    if (!found) return {{ ok: {{ exists: false }} }};
    let lid = s(found.lid);
    if (!lid) {{
      try {{ const e = await WPP.contact.getPnLidEntry(s(found.wid)); lid = e && e.lid ? e.lid._serialized : null; }}
      catch (err) {{ lid = null; }}
    }}
    const verified = found.bizInfo && found.bizInfo.verifiedName ? found.bizInfo.verifiedName.name || null : null;
    return {{ ok: {{ exists: true, wid: s(found.wid), lid, biz: !!found.biz, verified_name: verified }} }};
  }} catch (err) {{ return fail(err); }}
}}
"""

# chat/functions/list.ts (a page from a chat, that chat included) and the last message by the chat's
# lastReceivedKey (getMessageById.ts: the MsgStore, then the chat's history), in the bridge's message shape.
CHATS_JS = f"""
async ([after, count]) => {{
  {READ_HELPERS_JS}
  try {{
    const chats = await WPP.chat.list(after ? {{ id: after, count }} : {{ count }});
    const out = [];
    for (const c of chats) {{
      let last = null;
      if (c.lastReceivedKey) {{
        try {{ last = await window.__wagwMessage(await WPP.chat.getMessageById(s(c.lastReceivedKey))); }}
        catch (err) {{ last = null; }}
      }}
      out.push({{
        id: s(c.id), name: c.name || c.formattedTitle || null,
        unread: typeof c.unreadCount === 'number' ? c.unreadCount : 0, t: c.t || null,
        group: /@g\\.us$/.test(s(c.id)), archived: !!c.archive, last,
      }});
    }}
    return {{ ok: out }};
  }} catch (err) {{ return fail(err); }}
}}
"""

MESSAGES_JS = f"""
async ([chat, before, count]) => {{
  {READ_HELPERS_JS}
  try {{
    const options = before ? {{ count, direction: 'before', id: before }} : {{ count, direction: 'before' }};
    const out = [];
    for (const m of await WPP.chat.getMessages(chat, options)) {{
      if (!m || !m.id) continue;
      out.push(Object.assign(await window.__wagwMessage(m), {{ ack: typeof m.ack === 'number' ? m.ack : null }}));
    }}
    return {{ ok: out }};
  }} catch (err) {{ return fail(err); }}
}}
"""

# group/functions/getAllGroups.ts maps each group to chat.get(id): a group whose chat is not loaded is undefined.
GROUPS_JS = f"""
async () => {{
  {READ_HELPERS_JS}
  try {{
    const out = [];
    for (const g of await WPP.group.getAllGroups()) {{
      if (!g || !g.id) continue;
      const meta = g.groupMetadata || null;
      const members = meta && meta.participants ? meta.participants.length : null;
      out.push({{
        id: s(g.id), name: g.name || g.formattedTitle || (meta && meta.subject) || null,
        participants: typeof members === 'number' ? members : null,
        unread: typeof g.unreadCount === 'number' ? g.unreadCount : 0, t: g.t || null,
      }});
    }}
    return {{ ok: out }};
  }} catch (err) {{ return fail(err); }}
}}
"""

# group/functions/getParticipants.ts (ensureGroup.ts: chat_not_found, not_a_group) -> ParticipantModel
# {id, isAdmin, isSuperAdmin}; a LID member's phone from getPnLidEntry.ts (the local cache only, for a LID).
PARTICIPANTS_JS = f"""
async (group) => {{
  {READ_HELPERS_JS}
  try {{
    const out = [];
    for (const p of await WPP.group.getParticipants(group)) {{
      const id = s(p.id);
      let phone = /@c\\.us$/.test(id) ? id.split('@')[0] : null;
      if (/@lid$/.test(id)) {{
        try {{ const e = await WPP.contact.getPnLidEntry(id); phone = e && e.phoneNumber ? e.phoneNumber.id : null; }}
        catch (err) {{ phone = null; }}
      }}
      out.push({{ id, phone, admin: !!p.isAdmin, super_admin: !!p.isSuperAdmin }});
    }}
    return {{ ok: out }};
  }} catch (err) {{ return fail(err); }}
}}
"""
