// wa-gateway console: a static page that calls the tenant API with the operator's API key.
// Live status by polling (the API runs in Lambda behind API Gateway: no long-lived connections).
"use strict";

const KEY_STORAGE = "wagw.apiKey";
const DETAIL_POLL_MS = 1000;
const LIST_POLL_MS = 3000;
const CONNECTED = new Set(["authenticated", "ready"]);

const $ = (id) => document.getElementById(id);
const state = { key: null, detailId: null, qrText: null, qrUrl: null, timers: [], view: "sessions" };

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body, accept) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accept) headers.Accept = accept;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, problem);
  }
  if (response.status === 204) return null;
  if (accept === "image/png") return response.blob();
  return response.json();
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  return td;
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge ${status}`;
  span.textContent = status;
  return span;
}

function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await onClick(); showError(null); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
  return b;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Sign in -------------------------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  try {
    const me = await api("GET", "/v1/workspace");
    sessionStorage.setItem(KEY_STORAGE, key);
    $("whoami").textContent = `${me.workspace.name} · ${me.scopes.join(", ")}`;
    $("login").classList.add("hidden");
    $("app").classList.remove("hidden");
    startPolling();
    return true;
  } catch (e) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    $("login-error").textContent = e.status === 401 ? "That key is unknown or revoked." : String(e.message);
    return false;
  }
}

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.key = null;
  location.reload();
}

// Sessions ------------------------------------------------------------------------------------
async function loadSessions() {
  const filter = $("status-filter").value;
  const query = new URLSearchParams({ limit: "100" });
  if (filter) query.set("status", filter);
  const page = await api("GET", `/v1/sessions?${query}`);
  const body = $("sessions");
  body.replaceChildren();
  for (const s of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.sessionId = s.id;
    tr.append(cell(s.id), cell(s.name), cell(s.phone));
    const st = document.createElement("td");
    st.append(badge(s.status));
    tr.append(st, cell(s.reason), cell(when(s.created_at)));
    const actions = document.createElement("td");
    actions.append(button("Open", () => openSession(s.id)));
    tr.append(actions);
    body.append(tr);
  }
}

async function createSession(event) {
  event.preventDefault();
  const name = $("new-session-name").value.trim();
  const phone = $("new-session-phone").value.trim();
  try {
    const created = await api("POST", "/v1/sessions", phone ? { name, phone } : { name });
    $("new-session-name").value = "";
    $("new-session-phone").value = "";
    showError(null);
    await loadSessions();
    await openSession(created.id);
  } catch (e) {
    showError(e);
  }
}

async function openSession(id) {
  state.detailId = id;
  state.qrText = null;
  $("session-detail-card").hidden = false;
  $("detail-id").textContent = id;
  $("pairing-phone").value = "";
  await refreshDetail();
}

function closeDetail() {
  state.detailId = null;
  $("session-detail-card").hidden = true;
}

async function refreshDetail() {
  const id = state.detailId;
  if (!id) return;
  let session;
  try {
    session = await api("GET", `/v1/sessions/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 404) { closeDetail(); return; }
    throw e;
  }
  if (state.detailId !== id) return;
  const status = $("detail-status");
  status.className = `badge ${session.status}`;
  status.textContent = session.status;
  $("session-detail-card").dataset.status = session.status;
  $("detail-name").textContent = session.name || "—";
  $("detail-phone").textContent = session.phone || "—";
  $("detail-reason").textContent = session.reason || "—";
  $("detail-owner").textContent = session.owner || "—";
  $("pairing-code").textContent = session.pairing_code || "—";
  $("pairing-code").classList.toggle("code", Boolean(session.pairing_code));
  if (CONNECTED.has(session.status)) {
    showQr(null);
    $("connected").classList.remove("hidden");
    $("qr-waiting").classList.add("hidden");
    $("qr-expiry").textContent = "";
    return;
  }
  $("connected").classList.add("hidden");
  if (!session.has_qr) {
    showQr(null);
    $("qr-waiting").classList.remove("hidden");
    $("qr-waiting").textContent = session.status === "pairing" ? "Type the pairing code on the phone" : `Waiting for a QR… (${session.status})`;
    $("qr-expiry").textContent = "";
    return;
  }
  const qr = await api("GET", `/v1/sessions/${encodeURIComponent(id)}/qr`);
  if (state.detailId !== id || !qr.qr) return;
  if (qr.qr !== state.qrText) {
    const blob = await api("GET", `/v1/sessions/${encodeURIComponent(id)}/qr.png`, undefined, "image/png");
    if (state.detailId !== id) return;
    state.qrText = qr.qr;
    showQr(URL.createObjectURL(blob), qr.qr);
  }
  $("qr-expiry").textContent = qr.expires_at ? `refreshes by ${when(qr.expires_at)}` : "";
}

function showQr(url, text) {
  const img = $("qr-img");
  if (state.qrUrl) URL.revokeObjectURL(state.qrUrl);
  state.qrUrl = url;
  if (url) {
    img.src = url;
    img.dataset.qr = text;
    img.classList.remove("hidden");
    $("qr-waiting").classList.add("hidden");
  } else {
    state.qrText = null;
    img.removeAttribute("src");
    delete img.dataset.qr;
    img.classList.add("hidden");
  }
}

async function sessionCommand(path, body) {
  const id = state.detailId;
  if (!id) return;
  await api("POST", `/v1/sessions/${encodeURIComponent(id)}/${path}`, body);
  await refreshDetail();
}

// Endpoints -----------------------------------------------------------------------------------
async function loadEndpoints() {
  const list = await api("GET", "/v1/endpoints");
  const body = $("endpoints");
  body.replaceChildren();
  for (const ep of list) {
    const tr = document.createElement("tr");
    tr.dataset.endpointId = ep.id;
    tr.append(cell(ep.id), cell(ep.url), cell(ep.event_types.join(", ") || "all"));
    tr.append(cell(ep.enabled ? "enabled" : `disabled${ep.disabled_reason ? ` (${ep.disabled_reason})` : ""}`));
    const actions = document.createElement("td");
    actions.className = "row";
    actions.append(
      button("Test", async () => {
        const r = await api("POST", `/v1/endpoints/${ep.id}/test`);
        $("endpoint-test-result").textContent = r.delivered
          ? `Test ping delivered (${r.status_code}, ${r.duration_ms} ms)`
          : `Test ping failed: ${r.error}`;
      }),
      button(ep.enabled ? "Disable" : "Enable", async () => {
        await api("PATCH", `/v1/endpoints/${ep.id}`, { enabled: !ep.enabled });
        await loadEndpoints();
      }),
      button("Rotate secret", async () => {
        const r = await api("POST", `/v1/endpoints/${ep.id}/rotate-secret`, {});
        showSecret(r.secret);
      }),
      button("Delete", async () => {
        await api("DELETE", `/v1/endpoints/${ep.id}`);
        await loadEndpoints();
      }, "danger"),
    );
    tr.append(actions);
    body.append(tr);
  }
}

function showSecret(secret) {
  $("endpoint-secret").textContent = secret;
  $("endpoint-secret-box").classList.remove("hidden");
}

async function createEndpoint(event) {
  event.preventDefault();
  const url = $("endpoint-url").value.trim();
  const types = $("endpoint-types").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    const created = await api("POST", "/v1/endpoints", { url, event_types: types });
    showSecret(created.secret);
    $("endpoint-url").value = "";
    $("endpoint-types").value = "";
    showError(null);
    await loadEndpoints();
  } catch (e) {
    showError(e);
  }
}

// Failed deliveries ---------------------------------------------------------------------------
async function loadDeadLetters() {
  const page = await api("GET", "/v1/deliveries/dead-letters?limit=100");
  const body = $("dead-letters");
  body.replaceChildren();
  for (const d of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.deliveryId = d.delivery_id;
    const error = d.last_status ? `${d.reason} (HTTP ${d.last_status})` : d.reason;
    tr.append(cell(d.delivery_id), cell(`${d.event_type} ${d.event_id}`), cell(d.endpoint_id), cell(d.attempts),
      cell(error), cell(when(d.dead_lettered_at)));
    const actions = document.createElement("td");
    actions.append(button("Retry", async () => {
      await api("POST", `/v1/deliveries/${encodeURIComponent(d.delivery_id)}/retry`);
      await loadDeadLetters();
    }));
    tr.append(actions);
    body.append(tr);
  }
}

async function retryAll() {
  const since = $("retry-since").value;
  if (!since) { showError("pick a time"); return; }
  const r = await api("POST", "/v1/deliveries/retry", { since: new Date(since).toISOString() });
  const skipped = Object.keys(r.skipped).length;
  $("retry-result").textContent = `${r.replayed.length} queued again` + (skipped ? `, ${skipped} skipped (endpoint deleted or disabled)` : "") + (r.failed.length ? `, ${r.failed.length} failed` : "");
  await loadDeadLetters();
}

// Views and polling ---------------------------------------------------------------------------
function showView(name) {
  state.view = name;
  for (const b of document.querySelectorAll("header nav button")) b.classList.toggle("active", b.dataset.view === name);
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== `view-${name}`);
  refreshView().catch(showError);
}

async function refreshView() {
  if (state.view === "sessions") await loadSessions();
  else if (state.view === "endpoints") await loadEndpoints();
  else if (state.view === "deliveries") await loadDeadLetters();
}

function startPolling() {
  refreshView().catch(showError);
  let detailBusy = false;
  state.timers.push(setInterval(async () => {
    if (detailBusy || !state.detailId || state.view !== "sessions") return;
    detailBusy = true;
    try { await refreshDetail(); } catch (e) { showError(e); } finally { detailBusy = false; }
  }, DETAIL_POLL_MS));
  state.timers.push(setInterval(() => {
    if (state.view === "sessions") loadSessions().catch(showError);
  }, LIST_POLL_MS));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("api-key").value.trim()); });
  $("logout-button").addEventListener("click", signOut);
  $("new-session").addEventListener("submit", createSession);
  $("status-filter").addEventListener("change", () => loadSessions().catch(showError));
  $("close-detail").addEventListener("click", closeDetail);
  $("request-pairing").addEventListener("click", () => {
    const phone = $("pairing-phone").value.trim();
    sessionCommand("pairing-code", phone ? { phone } : {}).then(() => showError(null), showError);
  });
  $("restart-session").addEventListener("click", () => sessionCommand("restart").then(() => showError(null), showError));
  $("logout-session").addEventListener("click", () => sessionCommand("logout").then(() => showError(null), showError));
  $("delete-session").addEventListener("click", async () => {
    try {
      await api("DELETE", `/v1/sessions/${encodeURIComponent(state.detailId)}`);
      closeDetail();
      await loadSessions();
    } catch (e) { showError(e); }
  });
  $("new-endpoint").addEventListener("submit", createEndpoint);
  $("retry-all").addEventListener("click", () => retryAll().catch(showError));
  for (const b of document.querySelectorAll("header nav button")) b.addEventListener("click", () => showView(b.dataset.view));
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved);
});

// Conversations (a ready session): chats, a chat's history with media previews, send text or a file ----------
// Reads go through the session's worker (GET .../chats, .../messages); a file is uploaded through POST /v1/media
// (a presigned PUT) and sent by its media id. Polled like the rest (no long-lived connections).
const CONVERSATION_POLL_MS = 3000;
const convo = { sessionId: null, chat: null, cursor: null, messages: [], busy: false, media: new Map() };

function fileKind(mimetype) {
  const major = (mimetype || "").split("/")[0];
  return ["image", "video", "audio"].includes(major) ? major : "document";
}

async function refreshConversation() {
  const card = $("conversation-card");
  const id = state.detailId;
  const ready = id && $("session-detail-card").dataset.status === "ready";
  card.hidden = !ready;
  if (!ready) { convo.sessionId = null; return; }
  if (convo.sessionId !== id) {
    Object.assign(convo, { sessionId: id, chat: null, cursor: null, messages: [] });
    $("messages").replaceChildren();
    $("chat-title").textContent = "Pick a chat";
    $("send-form").classList.add("hidden");
    $("older-messages").classList.add("hidden");
  }
  await loadChats();
  if (convo.chat) await loadMessages(false);
}

async function loadChats() {
  const id = convo.sessionId;
  const page = await api("GET", `/v1/sessions/${encodeURIComponent(id)}/chats?limit=50`);
  if (convo.sessionId !== id) return;
  const list = $("chats");
  list.replaceChildren();
  for (const chat of page.items) {
    const li = document.createElement("li");
    li.dataset.chatId = chat.id;
    li.classList.toggle("active", chat.id === convo.chat);
    const title = document.createElement("div");
    title.textContent = chat.name || chat.id;
    if (chat.unread_count) {
      const unread = document.createElement("span");
      unread.className = "unread";
      unread.textContent = chat.unread_count < 0 ? "•" : String(chat.unread_count);
      title.append(unread);
    }
    const last = document.createElement("div");
    last.className = "last";
    const m = chat.last_message;
    last.textContent = m ? `${m.from_me ? "You: " : ""}${m.body || m.caption || `[${m.kind}]`}` : "";
    li.append(title, last);
    li.addEventListener("click", () => openChat(chat.id, chat.name).catch(showError));
    list.append(li);
  }
  $("conversation-state").textContent = `${page.items.length} chat${page.items.length === 1 ? "" : "s"}`;
}

async function openChat(chatId, name) {
  Object.assign(convo, { chat: chatId, cursor: null, messages: [] });
  $("chat-title").textContent = name || chatId;
  $("chat-title").classList.remove("muted");
  $("send-form").classList.remove("hidden");
  for (const li of $("chats").children) li.classList.toggle("active", li.dataset.chatId === chatId);
  await loadMessages(false);
}

// `older`: the page before the oldest shown; otherwise the newest page, merged with what is shown.
async function loadMessages(older) {
  const { sessionId, chat } = convo;
  const query = new URLSearchParams({ limit: "20" });
  if (older && convo.cursor) query.set("cursor", convo.cursor);
  const page = await api("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/chats/${encodeURIComponent(chat)}/messages?${query}`);
  if (convo.sessionId !== sessionId || convo.chat !== chat) return;
  const known = new Map(convo.messages.map((m, i) => [m.id, i]));
  const fresh = page.items.filter((m) => !known.has(m.id));
  let changed = false;  // an ack moved, or our upload got its media id
  for (const m of page.items) {
    const at = known.get(m.id);
    if (at !== undefined && JSON.stringify(convo.messages[at]) !== JSON.stringify(m)) { convo.messages[at] = m; changed = true; }
  }
  if (older) convo.messages.push(...fresh);
  else convo.messages.unshift(...fresh);
  if (older || convo.cursor === null) convo.cursor = page.next_cursor;
  $("older-messages").classList.toggle("hidden", !convo.cursor);
  if (fresh.length || changed || older) renderMessages(!older);
}

function renderMessages(scrollToEnd) {
  const box = $("messages");
  box.replaceChildren(...convo.messages.slice().reverse().map(messageBubble));
  if (scrollToEnd) box.scrollTop = box.scrollHeight;
}

function messageBubble(m) {
  const div = document.createElement("div");
  div.className = `msg${m.from_me ? " mine" : ""}`;
  div.dataset.messageId = m.id;
  if (m.media) div.append(mediaPreview(m));
  const text = m.body || m.caption || (m.location ? `📍 ${m.location.description || `${m.location.latitude}, ${m.location.longitude}`}` : "");
  if (text) {
    const p = document.createElement("div");
    p.className = "text";
    p.textContent = text;
    div.append(p);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${when(m.timestamp)}${m.from_me ? ` · ${["failed", "pending", "sent", "delivered", "read", "played"][(m.ack ?? 0) + 1] || ""}` : ""}`;
  div.append(meta);
  return div;
}

// Received media resolves through GET /v1/media/{id} (a fresh presigned URL) once the worker has stored it.
function mediaPreview(m) {
  const holder = document.createElement("div");
  holder.className = "media";
  const label = `${m.kind}${m.media.filename ? `: ${m.media.filename}` : ""}`;
  holder.textContent = `[${label}]`;
  if (!m.media.id) return holder;
  resolveMedia(m.media.id).then((found) => {
    if (!found) { holder.textContent = `[${label}: not stored]`; return; }
    holder.replaceChildren();
    if (fileKind(found.mimetype) === "image") {
      const img = document.createElement("img");
      img.className = "preview";
      img.alt = label;
      img.src = found.url;
      holder.append(img);
    } else {
      const a = document.createElement("a");
      a.href = found.url;
      a.textContent = `⬇ ${label}`;
      a.rel = "noreferrer";
      holder.append(a);
    }
  }, () => { holder.textContent = `[${label}: not available]`; });
  return holder;
}

async function resolveMedia(mediaId) {
  if (!convo.media.has(mediaId)) {
    convo.media.set(mediaId, api("GET", `/v1/media/${encodeURIComponent(mediaId)}`).catch((e) => {
      convo.media.delete(mediaId);
      if (e.status === 404) return null;
      throw e;
    }));
  }
  return convo.media.get(mediaId);
}

async function sendMessage(event) {
  event.preventDefault();
  if (convo.busy || !convo.chat) return;
  const text = $("send-text").value.trim();
  const file = $("send-file").files[0];
  if (!text && !file) return;
  convo.busy = true;
  $("send-button").disabled = true;
  try {
    const body = { to: convo.chat, client_message_id: `console-${Date.now()}-${Math.random().toString(36).slice(2, 8)}` };
    if (file) {
      const mimetype = file.type || "application/octet-stream";
      const upload = await api("POST", "/v1/media", { mimetype, size: file.size, filename: file.name });
      const headers = Object.fromEntries(Object.entries(upload.upload_headers).filter(([k]) => k.toLowerCase() !== "content-length"));
      const put = await fetch(upload.upload_url, { method: "PUT", headers, body: file });
      if (!put.ok) throw new Error(`the upload failed (HTTP ${put.status})`);
      Object.assign(body, { type: fileKind(mimetype), media: { media_id: upload.id } });
      if (text) body.text = text;
    } else {
      body.text = text;
    }
    await api("POST", `/v1/sessions/${encodeURIComponent(convo.sessionId)}/messages`, body);
    $("send-text").value = "";
    $("send-file").value = "";
    $("conversation-state").textContent = "Sent; it shows here once WhatsApp has it";
    showError(null);
  } catch (e) {
    showError(e);
  } finally {
    convo.busy = false;
    $("send-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("send-form").addEventListener("submit", sendMessage);
  $("older-messages").addEventListener("click", () => loadMessages(true).catch(showError));
  let conversationBusy = false;
  setInterval(async () => {
    if (conversationBusy || !state.key || state.view !== "sessions") return;
    conversationBusy = true;
    try { await refreshConversation(); } catch (e) { showError(e); } finally { conversationBusy = false; }
  }, CONVERSATION_POLL_MS);
});
