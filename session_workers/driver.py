"""The WhatsApp driver: speaks only `window.WPP` (@wppconnect/wa-js names), on the real site and the simulator.

On web.whatsapp.com the wa-js bundle is injected with `add_init_script` (it survives WhatsApp's CSP), with Google
Analytics and third-party link-preview servers off; the simulator page brings its own `window.WPP`. Either way a
bridge script (also an init script, so it survives reloads) waits for `WPP.isReady`, subscribes to the events we
need and forwards them through one exposed binding; calls go through `page.evaluate` on `WPP.*`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playwright.async_api import BrowserContext, Page

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
  const me = () => { try { return str(WPP.conn.getMyUserId()); } catch (err) { return null; } };
  const snapshot = async () => {
    const W = window.WPP;
    let code = null;
    try { const c = await W.conn.getAuthCode(); code = c && c.fullCode; } catch (err) { /* not in QR mode */ }
    let mode = null;
    try { mode = W.conn.getStreamData().mode; } catch (err) { /* older wa-js */ }
    let authenticated = false;
    try { authenticated = !!W.conn.isAuthenticated(); } catch (err) { /* not loaded */ }
    let mainReady = false;
    try { mainReady = !!(W.conn.isMainReady ? W.conn.isMainReady() : (W.isFullReady && authenticated)); } catch (err) {}
    return { qr: code, mode, authenticated, mainReady, phone: me() };
  };
  // Subscribe the moment window.WPP is assigned (before the page can emit anything), then report the state
  // once WPP.isReady; a poll covers any other way WPP might appear.
  let hooked = null;
  const hook = (W) => {
    if (!W || hooked === W || typeof W.on !== 'function') return;
    hooked = W;
    subscribe(W);
    const ready = () => {
      if (hooked !== W) return;
      if (W.isReady) snapshot().then((state) => send('attached', state));
      else setTimeout(ready, 50);
    };
    ready();
  };
  const subscribe = (W) => {
    W.on('conn.auth_code_change', (c) => { if (c && c.fullCode) send('qr', { code: c.fullCode }); });
    W.on('conn.qrcode_idle', () => send('qr_idle'));
    W.on('conn.link_code_change', (code) => send('link_code', { code: String(code) }));
    W.on('conn.authenticated', () => send('authenticated'));
    W.on('conn.main_ready', () => send('ready', { phone: me() }));
    W.on('conn.stream_mode_changed', (mode) => send('mode', { mode: String(mode) }));
    W.on('conn.logout_reason', (reason) => send('logout_reason', { reason: String(reason) }));
    W.on('conn.logout', () => send('logout'));
    W.on('chat.new_message', (m) => {
      if (!m || !m.id || m.id.fromMe) return;
      send('message', {
        id: str(m.id), chat: str(m.id.remote) || str(m.from), from: str(m.author) || str(m.from),
        body: typeof m.body === 'string' ? m.body : '', type: m.type || 'chat', t: m.t || null,
      });
    });
    W.on('chat.msg_ack_change', (a) => {
      if (!a) return;
      send('ack', { ack: a.ack, chat: str(a.chat), ids: (a.ids || []).map(str) });
    });
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

SEND_JS = """
async ([chatId, text, messageId]) => {
  const r = await WPP.chat.sendTextMessage(chatId, text, { messageId, linkPreview: false, createChat: true });
  return { id: String(r.id && r.id._serialized ? r.id._serialized : r.id), ack: typeof r.ack === 'number' ? r.ack : 0 };
}
"""

EXISTS_JS = """
async (id) => {
  try { return !!(await WPP.chat.getMessageById(id)); }
  catch (err) {
    if (err && (err.code === 'msg_not_found' || /not.?found/i.test(String(err.message)))) return false;
    throw err;
  }
}
"""


def chat_id(to: str) -> str:
    """A phone number or a chat id -> a WhatsApp chat id."""
    if "@" in to:
        return to
    return "".join(ch for ch in to if ch.isdigit()) + "@c.us"


def wa_message_id(session_id: str, client_message_id: str, to: str) -> str:
    """A deterministic WhatsApp message key for a client's message: a resend can be recognised."""
    digest = hashlib.sha256(f"{session_id}\x00{client_message_id}".encode()).hexdigest()[:16].upper()
    return f"true_{chat_id(to)}_3EB0{digest}"


def should_inject(settings: Settings) -> bool:
    if settings.wa_js_inject == "always":
        return True
    if settings.wa_js_inject == "never":
        return False
    host = urlparse(settings.whatsapp_url).hostname or ""
    return host == "whatsapp.com" or host.endswith(".whatsapp.com")


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

    async def open_page(self, context: BrowserContext) -> None:
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

    async def send_text(self, to: str, text: str, message_id: str) -> tuple[str, int]:
        result = await self._page().evaluate(SEND_JS, [chat_id(to), text, message_id])
        return str(result["id"]), int(result["ack"])

    async def message_exists(self, message_id: str) -> bool:
        return bool(await self._page().evaluate(EXISTS_JS, message_id))

    async def logout(self) -> bool:
        return bool(await self._page().evaluate("async () => !!(await WPP.conn.logout())"))

    async def request_pairing_code(self, phone: str) -> str:
        digits = "".join(ch for ch in phone if ch.isdigit())
        return str(
            await self._page().evaluate("async (p) => await WPP.conn.genLinkDeviceCodeForPhoneNumber(p, true)", digits)
        )

    async def state(self) -> dict[str, Any]:
        result = await self._page().evaluate(
            """() => ({
              authenticated: !!WPP.conn.isAuthenticated(),
              mode: WPP.conn.getStreamData().mode,
            })"""
        )
        return dict(json.loads(json.dumps(result)))
