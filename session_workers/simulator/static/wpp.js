// The WhatsApp Web simulator's `window.WPP`: a model of @wppconnect/wa-js 4.6.0 as it really behaves on
// web.whatsapp.com, not of what wa-gateway would like it to do. Every behaviour below cites the wa-js source
// (paths under its `src/` at tag v4.6.0); tests/integration/session_workers/test_wa_js_contract.py states each
// one against this page. The awkward parts are kept on purpose: `conn.main_ready` fires on the first QR, failed
// sends resolve instead of throwing, sends mark the chat read unless told not to, 1:1 chats resolve to LIDs,
// encrypted messages fire twice, group receipts carry the reader, pairing codes expire.
// Auth lives where WhatsApp Web keeps it: IndexedDB (database "wawc", with a non-extractable CryptoKey) and
// localStorage; a page that finds both logs in again without a QR code.
(function () {
  'use strict';
  const config = window.__wagwSimConfig || {};
  const listeners = new Map();
  const readyCallbacks = [];
  // Models WhatsApp's own build constant (wa-js reads it through `conn.getBuildConstants()`).
  window.Debug = Object.assign(window.Debug || {}, { VERSION: config.waVersion || '2.3000.1029999999' });
  const state = {
    clientId: 'c_' + Math.random().toString(36).slice(2) + Date.now().toString(36),
    mode: null,
    info: 'NORMAL',
    authenticated: false,
    phone: null,
    lid: null,
    deviceId: null,
    authCode: null,
    qrTimer: null,
    qrInterval: 20000,
    mainReady: false,
  };
  const msgStore = new Map(); // serialized id -> Msg (WhatsApp's MsgStore)
  const msgStoreListeners = new Map();

  function fire(name, payload) {
    for (const cb of Array.from(listeners.get(name) || [])) {
      try { cb(payload); } catch (err) { console.error('listener for ' + name + ' failed', err); }
    }
  }

  function wppError(code, message) {
    return Object.assign(new Error(message), { code });
  }

  function wid(serialized) {
    const [user, server] = String(serialized).split('@');
    const s = server || 'c.us';
    return {
      user, server: s, _serialized: user + '@' + s,
      isLid() { return s === 'lid'; },
      isGroup() { return s === 'g.us'; },
      equals(other) { return !!other && String(other._serialized || other) === user + '@' + s; },
      toString() { return this._serialized; },
    };
  }

  // MsgKey: `<fromMe>_<remote>_<id>[_<participant>]` (whatsapp/misc/MsgKey.ts)
  function msgKey(fromMe, remote, id, participant) {
    const r = typeof remote === 'string' ? wid(remote) : remote;
    const p = participant ? (typeof participant === 'string' ? wid(participant) : participant) : undefined;
    const serialized = (fromMe ? 'true' : 'false') + '_' + r._serialized + '_' + id + (p ? '_' + p._serialized : '');
    return { fromMe, remote: r, id, participant: p, _serialized: serialized, toString() { return this._serialized; } };
  }

  function parseKey(serialized) {
    const parts = String(serialized).split('_');
    if (parts.length < 3) throw wppError('invalid_message_id', 'invalid message id');
    return msgKey(parts[0] === 'true', parts[1], parts[2], parts[3]);
  }

  async function api(path, body) {
    const response = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data.detail || ('HTTP ' + response.status)), { status: response.status });
    return data;
  }

  // --- storage: IndexedDB "wawc" (with the CryptoKey) and localStorage ---------------------------------
  // Version 2 adds the message store (WhatsApp Web keeps its messages in IndexedDB too): archives of version 1
  // open and upgrade in place.
  function idb() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open('wawc', 2);
      open.onupgradeneeded = () => {
        const names = open.result.objectStoreNames;
        if (!names.contains('user')) open.result.createObjectStore('user');
        if (!names.contains('messages')) open.result.createObjectStore('messages');
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  async function idbDo(mode, fn, store = 'user') {
    const db = await idb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const request = fn(tx.objectStore(store));
      tx.oncomplete = () => { db.close(); resolve(request && request.result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  }
  const readAuth = () => idbDo('readonly', (s) => s.get('auth'));
  const readValues = () => idbDo('readonly', (s) => s.get('values'));
  const writeAuth = (value) => idbDo('readwrite', (s) => s.put(value, 'auth'));
  async function clearAuth() {
    await idbDo('readwrite', (s) => s.clear());
    await idbDo('readwrite', (s) => s.clear(), 'messages');
    await new Promise((resolve) => { const r = indexedDB.deleteDatabase('model-storage'); r.onsuccess = r.onerror = r.onblocked = resolve; });
    localStorage.removeItem('WASecretBundle');
    localStorage.removeItem('last-wid-md');
  }
  // The stored form of a Msg (what WhatsApp Web's own message store keeps).
  function saveMsg(msg) {
    const row = {
      id: msg.id._serialized, fromMe: msg.id.fromMe, chat: msg.id.remote._serialized,
      author: msg.author ? msg.author._serialized : null, body: msg.body === undefined ? null : msg.body,
      type: msg.type, t: msg.t, ack: msg.ack,
      caption: msg.caption || null, lat: msg.lat == null ? null : msg.lat, lng: msg.lng == null ? null : msg.lng,
      loc: msg.loc || null, quoted: msg.quotedMsgId ? msg.quotedMsgId._serialized : null,
      mentions: (msg.mentionedJidList || []).map((m) => m._serialized), mediaData: msg.mediaData || null,
      mimetype: msg.mimetype || null, size: msg.size || null, filename: msg.filename || null,
    };
    return idbDo('readwrite', (s) => s.put(row, row.id), 'messages');
  }
  function loadMsg(row) {
    const chat = wid(row.chat);
    const me = wid(state.lid && (chat.isLid() || chat.isGroup()) ? state.lid + '@lid' : state.phone + '@c.us');
    const author = row.author ? wid(row.author) : undefined;
    const key = parseKey(row.id);
    return {
      id: key, from: row.fromMe ? me : chat, to: row.fromMe ? chat : me, author, body: row.body === null ? undefined : row.body,
      type: row.type, t: row.t, ack: row.ack, isNewMsg: false,
      caption: row.caption || undefined, lat: row.lat == null ? undefined : row.lat,
      lng: row.lng == null ? undefined : row.lng, loc: row.loc || undefined,
      quotedMsgId: row.quoted ? parseKey(row.quoted) : undefined, mentionedJidList: (row.mentions || []).map((m) => wid(m)),
      mediaData: row.mediaData || undefined, mimetype: row.mimetype || undefined, size: row.size || undefined,
      filename: row.filename || undefined,
    };
  }
  const storedMsgs = () => idbDo('readonly', (s) => s.getAll(), 'messages');

  // What else a linked page keeps (as WhatsApp Web does): a record holding every value type a structured clone
  // carries, a token encrypted under a non-extractable AES-GCM key made at link time (decrypted on every load),
  // and a `model-storage` database of realistic size. A restore that loses or alters any of them fails visibly:
  // the page reports /api/restore_failed with the reason and shows a QR code, as WhatsApp Web would break.
  function seededBytes(seed, n) {
    let h = 2166136261;
    for (const c of String(seed)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) { h = Math.imul(h ^ (h >>> 15), 2246822507) + i; out[i] = (h >>> 24) & 255; }
    return out;
  }
  function typedValues(seed) {
    const bytes = seededBytes(seed, 64);
    const view = new DataView(bytes.slice(0, 16).buffer);
    return {
      blob: new Blob([bytes.slice(0, 40)], { type: 'application/octet-stream' }),
      file: new File([bytes.slice(8, 24)], 'avatar.jpg', { type: 'image/jpeg', lastModified: 1700000000000 }),
      buffer: bytes.slice(0, 32).buffer,
      u8: bytes.slice(0, 12),
      i16: new Int16Array(bytes.slice(0, 16).buffer, 4, 3),
      f64: new Float64Array([Math.PI, -0, Infinity, NaN]),
      big: new BigInt64Array([-5n, 2n ** 62n]),
      view,
      date: new Date(1700000000123),
      map: new Map([['k', 1], [2, ['v']]]),
      set: new Set(['a', 7]),
      regexp: /wa[^b]+/gi,
      bigint: 2n ** 70n,
      nested: { list: [1, 'two', null, undefined, true], when: new Date(0) },
    };
  }
  function sameBytes(a, b) {
    const x = new Uint8Array(a), y = new Uint8Array(b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  async function typedValuesLost(found, seed) {
    const want = typedValues(seed);
    if (!found) return 'typed record missing';
    const checks = {
      blob: async () => found.blob instanceof Blob && found.blob.type === want.blob.type && sameBytes(await found.blob.arrayBuffer(), await want.blob.arrayBuffer()),
      file: async () => found.file instanceof File && found.file.name === 'avatar.jpg' && found.file.lastModified === 1700000000000 && sameBytes(await found.file.arrayBuffer(), await want.file.arrayBuffer()),
      buffer: () => found.buffer instanceof ArrayBuffer && sameBytes(found.buffer, want.buffer),
      u8: () => found.u8 instanceof Uint8Array && sameBytes(found.u8, want.u8),
      i16: () => found.i16 instanceof Int16Array && found.i16.byteOffset === 4 && found.i16.length === 3 && sameBytes(found.i16.buffer, want.i16.buffer),
      f64: () => found.f64 instanceof Float64Array && Object.is(found.f64[1], -0) && found.f64[2] === Infinity && Number.isNaN(found.f64[3]),
      big: () => found.big instanceof BigInt64Array && found.big[0] === -5n && found.big[1] === 2n ** 62n,
      view: () => found.view instanceof DataView && sameBytes(found.view.buffer, want.view.buffer),
      date: () => found.date instanceof Date && found.date.getTime() === 1700000000123,
      map: () => found.map instanceof Map && found.map.get('k') === 1 && found.map.get(2)[0] === 'v',
      set: () => found.set instanceof Set && found.set.has('a') && found.set.has(7),
      regexp: () => found.regexp instanceof RegExp && found.regexp.source === 'wa[^b]+' && found.regexp.flags === 'gi',
      bigint: () => found.bigint === 2n ** 70n,
      nested: () => found.nested && found.nested.list.length === 5 && found.nested.list[3] === undefined && 3 in found.nested.list && found.nested.when instanceof Date,
    };
    for (const [name, check] of Object.entries(checks)) {
      let ok = false;
      try { ok = await check(); } catch (err) { ok = false; }
      if (!ok) return 'value of type ' + name + ' lost or altered';
    }
    return null;
  }
  const WORDS = 'ok sure tomorrow meeting invoice order shipped thanks price photo call later delivery address payment ' +
    'receipt hello morning evening week confirm cancel question answer store open closed please sorry great';
  function modelStorage() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open('model-storage', 1);
      open.onupgradeneeded = () => {
        const db = open.result;
        db.createObjectStore('contact', { keyPath: 'id' });
        db.createObjectStore('chat', { keyPath: 'id' });
        db.createObjectStore('message', { keyPath: 'id' }).createIndex('chat', 'chat', { unique: false });
        db.createObjectStore('meta', { autoIncrement: true });
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  // About `kb` KiB of contacts, chats and messages with varied text (compresses like real chat history).
  async function fillModelStorage(kb, seed) {
    const words = WORDS.split(' ');
    const noise = seededBytes(seed, 4096);
    const db = await modelStorage();
    let bytes = 0, n = 0;
    const counts = { contact: 0, chat: 0, message: 0 };
    const chats = new Set();
    await new Promise((resolve, reject) => {
      const tx = db.transaction(['contact', 'chat', 'message', 'meta'], 'readwrite');
      tx.objectStore('meta').add({ created: new Date(), seed });
      while (bytes < kb * 1024) {
        const r = noise[n % 4096], chat = '1555' + String(1000000 + (n % 97)) + '@c.us';
        if (!chats.has(chat)) {
          chats.add(chat);
          tx.objectStore('contact').put({ id: chat, name: words[r % words.length] + ' ' + n, pushname: 'c' + r, t: n });
          tx.objectStore('chat').put({ id: chat, unread: r % 3, t: new Date(1700000000000 + n * 1000), archived: false });
          counts.contact++; counts.chat++;
        }
        const body = Array.from({ length: 4 + (r % 18) }, (_, i) => words[noise[(n * 7 + i) % 4096] % words.length]).join(' ');
        // The fields WhatsApp Web's message model keeps per row (about 650 bytes of JSON each).
        const id = 'false_' + chat + '_3A' + n.toString(16).toUpperCase().padStart(18, '0');
        const row = {
          id, rowId: 1e9 + n, chat, body, type: 'chat', t: 1700000000 + n, ack: r % 4, from: chat, to: seed,
          notifyName: words[r % words.length], kind: 'chat', isNewMsg: false, star: false, recvFresh: true,
          broadcast: false, isForwarded: false, forwardingScore: 0, mentionedJidList: [], labels: [], links: [],
          productHeaderImageRejected: false, lastPlaybackProgress: 0, isDynamicReplyButtonsMsg: false,
          isMdHistoryMsg: n % 5 === 0, stickerSentTs: 0, requiresDirectConnection: null, pttForwardedFeaturesEnabled: true,
        };
        tx.objectStore('message').put(row);
        counts.message++;
        bytes += JSON.stringify(row).length;
        n++;
      }
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
    db.close();
    return counts;
  }
  async function modelStorageLost(expected) {
    if (!expected) return null;
    const db = await modelStorage();
    try {
      for (const [store, count] of Object.entries(expected)) {
        const found = await new Promise((resolve, reject) => {
          const r = db.transaction(store).objectStore(store).count();
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
        if (found !== count) return 'model-storage.' + store + ' holds ' + found + ' records, expected ' + count;
      }
      return null;
    } finally { db.close(); }
  }

  // Page weight (config.heapMb, config.domNodes; the server's PAGE_WEIGHTS): once logged in, WhatsApp Web holds
  // its chats and messages as models in the JS heap (its Collections) and renders the chat list. This adds that
  // bulk and nothing else: the models are in a closure no wa-js name reaches, and the list is its own element,
  // so every WPP function and event behaves exactly as on a light page; only the time to MAIN grows (the build
  // runs while the page is SYNCING, as WhatsApp Web loads its store). Dropped on logout (WhatsApp Web reloads).
  const MODEL_HEAP_BYTES = 375; // V8 heap per message model below (test_page_weight.py checks the total)
  let models = null;
  function loadModels(seed) {
    const heapMb = config.heapMb || 0, domNodes = config.domNodes || 0;
    if (!heapMb && !domNodes) return;
    const words = WORDS.split(' ');
    const noise = seededBytes(seed, 4096);
    const count = Math.round((heapMb * 1048576) / MODEL_HEAP_BYTES);
    const chatCount = Math.max(Math.ceil(domNodes / 5), Math.min(5000, Math.ceil(count / 100)), 1);
    const chats = [];
    for (let c = 0; c < chatCount; c++) {
      const id = '1555' + String(2000000 + c) + '@c.us';
      chats.push({ id, name: words[noise[c % 4096] % words.length] + ' ' + c, unreadCount: noise[c % 4096] % 4, t: 1700000000 + c, archive: false, pin: 0, muteExpiration: 0, msgs: [] });
    }
    for (let n = 0; n < count; n++) {
      const r = noise[n % 4096], chat = chats[n % chatCount];
      // Strings built per message (not shared literals), as messages decoded from the wire are.
      const body = words[r % words.length] + ' ' + words[noise[(n * 7) % 4096] % words.length] + ' ' + n.toString(36) + ' ' + words[noise[(n * 13) % 4096] % words.length];
      chat.msgs.push({
        id: 'false_' + chat.id + '_3A' + n.toString(16).toUpperCase().padStart(18, '0'), body, type: 'chat',
        t: 1700000000 + n, ack: r % 4, from: chat.id, notifyName: chat.name, isNewMsg: false, star: false,
        isForwarded: false, mentionedJidList: [],
      });
    }
    models = { chats };
    if (!domNodes) return;
    // The chat list: five elements a row (row, name, time, last message, unread badge).
    const list = document.createElement('div');
    list.id = 'chat-list';
    const rows = document.createDocumentFragment();
    for (let c = 0, made = 1; made < domNodes; c++, made += 5) {
      const chat = chats[c % chatCount];
      const row = document.createElement('div');
      row.className = 'chat';
      const name = document.createElement('span');
      name.textContent = chat.name;
      const time = document.createElement('span');
      time.textContent = new Date(chat.t * 1000).toISOString().slice(11, 16);
      const last = document.createElement('div');
      last.textContent = chat.msgs.length ? chat.msgs[chat.msgs.length - 1].body : '';
      const badge = document.createElement('span');
      badge.textContent = String(chat.unreadCount);
      row.append(name, time, last, badge);
      rows.append(row);
    }
    list.append(rows);
    (document.getElementById('app') || document.body).append(list);
  }
  function unloadModels() {
    models = null;
    const list = document.getElementById('chat-list');
    if (list) list.remove();
  }

  function b64bytes(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }
  function bytesb64(buffer) {
    return btoa(String.fromCharCode.apply(null, Array.from(new Uint8Array(buffer))));
  }

  // --- connection state -------------------------------------------------------------------------------
  // conn/events/registerStreamEvent.ts emits every Stream mode change; conn/events/registerMainReadyEvent.ts
  // turns the FIRST mode that is MAIN *or QR* into `conn.main_ready`, once per page load, and
  // conn/functions/isMainReady.ts latches true from then on. An unpaired page is "main ready" while it shows a QR.
  function setMode(mode) {
    if (state.mode === mode) return;
    state.mode = mode;
    const el = document.getElementById('mode');
    if (el) el.textContent = mode;
    fire('conn.stream_mode_changed', mode);
    if (!state.mainReady && (mode === 'MAIN' || mode === 'QR')) {
      state.mainReady = true;
      fire('conn.main_ready');
    }
  }

  function stopQr() {
    if (state.qrTimer) clearTimeout(state.qrTimer);
    state.qrTimer = null;
  }

  async function nextQr() {
    stopQr();
    if (state.authenticated || linkCode.phone) return;
    let code;
    try {
      code = await api('/api/qr', { client_id: state.clientId });
    } catch (err) {
      state.qrTimer = setTimeout(nextQr, 1000);
      return;
    }
    if (code.idle) {
      state.authCode = null;
      fire('conn.qrcode_idle');
      return;
    }
    state.qrInterval = code.ttl_ms;
    const [ref, staticKeyB64, identityKeyB64, advSecretKey] = code.fullCode.split(',');
    state.authCode = { type: 'qr', ref, staticKeyB64, identityKeyB64, advSecretKey, platform: 'chrome', fullCode: code.fullCode };
    const el = document.getElementById('qr');
    if (el) el.textContent = code.fullCode;
    setMode('QR');
    fire('conn.auth_code_change', state.authCode);
    state.qrTimer = setTimeout(nextQr, state.qrInterval);
  }

  function loggedIn(account, deviceId, fresh) {
    stopQr();
    cancelLinkDeviceCode();
    state.authCode = null;
    state.authenticated = true;
    state.phone = account.phone;
    state.lid = account.lid;
    state.deviceId = deviceId;
    const el = document.getElementById('qr');
    if (el) el.textContent = '';
    // conn/events/registerAuthCodeChangeEvent.ts: the ref changes, getAuthCode() is null once logged in.
    if (fresh) fire('conn.auth_code_change', null);
    // conn/events/registerAuthenticatedEvent.ts: only a page that attached unauthenticated fires it.
    if (fresh) fire('conn.authenticated');
    setMode('SYNCING');
    setTimeout(() => {
      if (!state.authenticated) return;
      if (!models) loadModels(deviceId);
      if (state.mode === 'SYNCING') setMode(account.offline ? 'OFFLINE' : 'MAIN');
      WPP.isFullReady = true;
    }, config.syncMs == null ? 50 : config.syncMs);
  }

  async function loggedOut(reason) {
    state.authenticated = false;
    state.phone = null;
    state.lid = null;
    state.deviceId = null;
    unloadModels();
    await clearAuth();
    fire('conn.logout_reason', reason);
    fire('conn.logout');
    fire('conn.require_auth');
    nextQr();
  }

  function keyLost(key, name, usages) {
    if (!(key instanceof CryptoKey)) return 'not a CryptoKey (lost in a storage round trip)';
    if (key.extractable !== false) return 'came back extractable';
    if (key.algorithm.name !== name || key.usages.join() !== usages) return 'came back with another algorithm or usages';
    return null;
  }
  // Why what this page found in storage cannot log it in, or null. Every load decrypts the sealed token with the
  // non-extractable key made at link time: a lost or replaced key fails here, visibly.
  async function storageLost(saved) {
    const lost = keyLost(saved.key, 'HMAC', 'sign') || keyLost(saved.secret_key, 'AES-GCM', 'encrypt,decrypt');
    if (lost) return 'stored key ' + lost;
    try {
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: saved.sealed_token.iv }, saved.secret_key, saved.sealed_token.data);
      saved.token = new TextDecoder().decode(plain);
    } catch (err) {
      return 'the sealed token does not decrypt with the stored key (' + err.name + ')';
    }
    if (!(saved.linked_at instanceof Date)) return 'linked_at is not a Date';
    return (await typedValuesLost(await readValues().catch(() => undefined), saved.device_id)) || (await modelStorageLost(saved.storage));
  }
  async function restoreFailed(reason) {
    console.error('stored auth unusable, a new QR scan is needed: ' + reason);
    await api('/api/restore_failed', { client_id: state.clientId, reason }).catch(() => undefined);
    await clearAuth();
    return false;
  }

  async function restore() {
    const saved = await readAuth().catch(() => undefined);
    const bundle = JSON.parse(localStorage.getItem('WASecretBundle') || 'null');
    if (!saved || !bundle) return false;
    const reason = await storageLost(saved);
    if (reason) return restoreFailed(reason);
    // A page holding a login never falls back to a QR because WhatsApp's servers cannot be reached: the stream
    // goes OFFLINE / OPENING and reconnects with backoff (whatsapp/enums/StreamMode.ts, StreamInfo.ts); only the
    // server refusing the login (401: logged out from the phone) ends it.
    for (let attempt = 0; ; attempt += 1) {
      try {
        const { nonce } = await api('/api/challenge', { client_id: state.clientId });
        const sig = await crypto.subtle.sign('HMAC', saved.key, new TextEncoder().encode(nonce));
        const result = await api('/api/login', {
          client_id: state.clientId, device_id: saved.device_id, token: saved.token, nonce, sig: bytesb64(sig),
        });
        state.info = 'NORMAL';
        loggedIn(result, saved.device_id, false);
        return true;
      } catch (err) {
        if (err.status === 401) {
          await clearAuth();
          return false;
        }
        state.info = 'OPENING';
        setMode('OFFLINE');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  // --- WhatsApp's MsgStore (only what the events below need) ------------------------------------------
  function storeMsg(msg) {
    msgStore.set(msg.id._serialized, msg);
  }
  function msgStoreFire(name, msg) {
    for (const cb of Array.from(msgStoreListeners.get(name) || [])) {
      try { cb(msg, msg.ack); } catch (err) { console.error(err); }
    }
  }
  function setAck(msg, ack) {
    msg.ack = ack;
    msgStoreFire('change:ack', msg);
    // chat/events/registerAckMessageEvent.ts: a change of ack to 1 (server) is emitted from the MsgStore;
    // any other value reaches `chat.msg_ack_change` only through a receipt (ack >= 2). A failed ack (-1) is
    // never emitted as chat.msg_ack_change: it shows only on the Msg itself.
    if (ack === 1) fire('chat.msg_ack_change', { ack, chat: msg.to, ids: [msg.id] });
  }

  function inboundMsg(event) {
    const fromMe = !!event.from_me;
    const chat = wid(event.chat);
    const author = event.author ? wid(event.author) : undefined;
    const me = wid(state.lid && (chat.isLid() || chat.isGroup()) ? state.lid + '@lid' : state.phone + '@c.us');
    return {
      id: msgKey(fromMe, chat, event.id, chat.isGroup() ? (fromMe ? me : author) : undefined),
      from: fromMe ? me : chat,
      to: fromMe ? chat : me,
      author: chat.isGroup() ? (fromMe ? me : author) : undefined,
      body: event.body,
      type: event.msg_type,
      t: event.t,
      isNewMsg: true,
      ack: fromMe ? 1 : 0,
      // What a Msg of each type carries (whatsapp/models/MsgModel.ts): the caption of media, where it points to
      // (a location), the quoted message, the mentioned users, and for media the mediaData downloadMedia needs.
      caption: event.caption || undefined,
      lat: event.lat, lng: event.lng, loc: event.loc,
      quotedMsgId: event.quoted ? parseKey(event.quoted) : undefined,
      mentionedJidList: (event.mentions || []).map((m) => wid(m)),
      mimetype: event.media ? event.media.mimetype : undefined,
      size: event.media ? event.media.size : undefined,
      filename: event.media ? event.media.filename : undefined,
      mediaData: event.media ? { mimetype: event.media.mimetype, filehash: event.media.sha256, size: event.media.size } : undefined,
    };
  }

  // chat/events/registerNewMessageEvent.ts: every new message is emitted, the account's own ones too
  // (`id.fromMe`, e.g. typed on the phone). A message that arrives encrypted is added as type 'ciphertext'
  // with no body and emitted; when it decrypts, the same Msg changes type and is emitted AGAIN, same id.
  // The page acknowledges a message to the server (the poll's `after`) once this resolves: after it is stored,
  // as WhatsApp Web sends its receipt after writing the message to its database; from then on the server never
  // sends it again.
  async function newMessage(event) {
    const msg = inboundMsg(event);
    storeMsg(msg);
    if (!event.encrypted) {
      await saveMsg(msg);
      queueMicrotask(() => fire('chat.new_message', msg));
      return;
    }
    const body = msg.body;
    const type = msg.type;
    msg.type = 'ciphertext';
    msg.body = undefined;
    await saveMsg(msg);
    queueMicrotask(() => fire('chat.new_message', msg));
    setTimeout(async () => {
      msg.type = type;
      msg.body = body;
      await saveMsg(msg);
      queueMicrotask(() => fire('chat.new_message', msg));
    }, config.decryptMs == null ? 120 : config.decryptMs);
  }

  // chat/events/registerAckMessageEvent.ts (processSimpleACK): receipts (ack >= 2) of our own messages become
  // MsgKeys built from the receipt: remote = the receipt's chat, participant = the receipt's participant
  // (in groups: the reader), so the serialized id of a group receipt is `true_<group>_<id>_<reader>`.
  function receipt(event) {
    const known = msgStore.get(event.message_id);
    if (event.ack >= 2) {
      const parts = String(event.message_id).split('_');
      const chat = wid(event.chat || parts[1]);
      const ids = [msgKey(true, chat, parts[2], event.reader || undefined)];
      if (known && known.ack < event.ack) known.ack = event.ack;
      queueMicrotask(() => fire('chat.msg_ack_change', { ack: event.ack, chat, sender: event.reader ? wid(event.reader) : undefined, ids }));
      return;
    }
    if (known) setAck(known, event.ack);
  }

  async function onServerEvent(event) {
    switch (event.type) {
      case 'paired': {
        const key = await crypto.subtle.importKey('raw', b64bytes(event.key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        // Made here, never extractable, used on every load: the login token is kept only sealed under it.
        const secretKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, secretKey, new TextEncoder().encode(event.token));
        const storage = await fillModelStorage(config.storageKb == null ? 256 : config.storageKb, event.device_id);
        await idbDo('readwrite', (s) => s.put(typedValues(event.device_id), 'values'));
        await writeAuth({
          device_id: event.device_id, phone: event.phone, key, secret_key: secretKey, sealed_token: { iv, data },
          linked_at: new Date(), storage,
        });
        localStorage.setItem('WASecretBundle', JSON.stringify({ device_id: event.device_id }));
        localStorage.setItem('last-wid-md', JSON.stringify(event.phone + ':1@c.us'));
        loggedIn(event, event.device_id, true);
        break;
      }
      case 'message':
        await newMessage(event);
        break;
      case 'ack':
        receipt(event);
        break;
      case 'mode':
        if (state.authenticated) setMode(event.mode);
        break;
      case 'conflict':
        setMode('CONFLICT');
        break;
      case 'logout':
        await loggedOut(event.reason);
        break;
      case 'reaction':
        // chat/events/registerReactionsEvent.ts (a single new reaction; repeats within 10 s are dropped there)
        queueMicrotask(() => fire('chat.new_reaction', {
          id: msgKey(false, wid(event.chat), event.id), msgId: parseKey(event.target), reactionText: event.emoji,
          read: false, sender: wid(event.sender), orphan: 0, orphanReason: null, timestamp: event.t,
        }));
        break;
      case 'edit': {
        // chat/events/registerEditedMessageEvent.ts: {chat, id, msg} with the Msg carrying its new body
        const key = parseKey(event.target);
        const msg = msgStore.get(key._serialized) || { id: key, from: key.remote, to: wid(state.phone + '@c.us'), type: 'chat', t: event.t };
        msg.body = event.body;
        storeMsg(msg);
        await saveMsg(msg);
        queueMicrotask(() => fire('chat.msg_edited', { chat: key.remote, id: key._serialized, msg }));
        break;
      }
      case 'revoke': {
        // chat/events/registerRevokeMessageEvent.ts: {author?, from, id, refId, to, type}
        const ref = parseKey(event.target);
        queueMicrotask(() => fire('chat.msg_revoke', {
          author: event.author ? wid(event.author) : undefined, from: ref.remote, id: msgKey(ref.fromMe, ref.remote, event.id),
          refId: ref, to: wid(state.phone + '@c.us'), type: event.by_admin ? 'admin_revoke' : 'revoke',
        }));
        break;
      }
      case 'presence':
        // chat/events/registerPresenceChange.ts
        queueMicrotask(() => fire('chat.presence_change', {
          id: wid(event.chat), isOnline: event.state !== 'unavailable', isGroup: event.chat.endsWith('@g.us'),
          isUser: !event.chat.endsWith('@g.us'), shortName: '', state: event.state, t: event.t,
        }));
        break;
      case 'group':
        // group/events/registerParticipantsChangedEvent.ts: ids as strings
        queueMicrotask(() => fire('group.participant_changed', {
          author: event.author || undefined, groupId: event.group, action: event.action,
          operation: event.action === 'join' ? 'add' : event.action === 'leaver' ? 'remove' : event.action,
          participants: event.participants,
        }));
        break;
      case 'call':
        // call/events/registerIncomingCallEvent.ts
        queueMicrotask(() => fire('call.incoming_call', {
          id: event.id, isGroup: false, isVideo: !!event.video, offerTime: event.t, sender: wid(event.sender),
          peerJid: wid(event.sender),
        }));
        break;
      case 'link_code_expired':
        // WhatsApp's LinkDeviceEvents 'force_manual_refresh' (linkDeviceCodeLifecycle.ts: onManualRefreshRequired)
        if (linkCode.phone) { clearLinkTimer(); linkCode.code = null; fire('conn.link_code_expired'); }
        break;
    }
  }

  async function pollLoop() {
    let after = 0; // events are re-sent until a poll acknowledges them
    for (;;) {
      try {
        const { events } = await api('/api/poll?client_id=' + encodeURIComponent(state.clientId) + '&after=' + after);
        for (const event of events) {
          if (event.seq <= after) continue;
          await onServerEvent(event);
          after = event.seq;
        }
      } catch (err) {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  function requireLogin() {
    if (!state.authenticated) throw wppError('not_authenticated', 'not logged in');
  }

  // --- pairing code (conn/functions/linkDeviceCodeLifecycle.ts) ----------------------------------------
  const LINK_CODE_TTL_MS = config.linkCodeTtlMs || 3.25 * 60 * 1000;
  const MAX_AUTO_REFRESHES = 5;
  const linkCode = { phone: null, code: null, timer: null, refreshCount: 0, epoch: 0, push: true };
  function clearLinkTimer() { if (linkCode.timer) clearTimeout(linkCode.timer); linkCode.timer = null; }
  function cancelLinkDeviceCode() {
    linkCode.epoch++;
    clearLinkTimer();
    linkCode.phone = null;
    linkCode.code = null;
    linkCode.refreshCount = 0;
  }
  function scheduleLinkRefresh() {
    clearLinkTimer();
    const epoch = linkCode.epoch;
    linkCode.timer = setTimeout(() => {
      if (epoch !== linkCode.epoch || !linkCode.phone) return;
      if (linkCode.refreshCount >= MAX_AUTO_REFRESHES) {
        linkCode.code = null;
        linkCode.timer = null;
        fire('conn.link_code_expired');
        return;
      }
      linkCode.refreshCount++;
      refreshLinkDeviceCode().catch(() => undefined);
    }, LINK_CODE_TTL_MS);
  }
  async function generateLinkDeviceCode() {
    const epoch = linkCode.epoch;
    const code = await genLinkDeviceCodeForPhoneNumber(linkCode.phone, linkCode.push);
    if (epoch !== linkCode.epoch) return code;
    linkCode.code = code;
    scheduleLinkRefresh();
    fire('conn.link_code_change', code);
    return code;
  }
  // conn/functions/genLinkDeviceCodeForPhoneNumber.ts: returns a code and emits NOTHING.
  async function genLinkDeviceCodeForPhoneNumber(phone, sendPushNotification = true) {
    if (!phone || typeof phone !== 'string') {
      throw wppError('send_the_phone_number_to_connect', "Can't get code for without phone number param");
    }
    if (state.authenticated) {
      throw wppError('cannot_get_code_for_already_authenticated', "Can't get code for already authenticated user");
    }
    const { code } = await api('/api/link_code', { client_id: state.clientId, phone: String(phone).replace(/\D/g, '') });
    stopQr();
    return code;
  }
  async function startLinkDeviceCodeForPhoneNumber(phone, sendPushNotification = true) {
    if (linkCode.phone === phone && linkCode.code) return linkCode.code;
    cancelLinkDeviceCode();
    linkCode.phone = phone;
    linkCode.push = sendPushNotification;
    try {
      return await generateLinkDeviceCode();
    } catch (err) {
      linkCode.code = null;
      fire('conn.link_code_error', err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }
  async function refreshLinkDeviceCode() {
    if (!linkCode.phone) throw new Error('No phone linking flow is active');
    clearLinkTimer();
    linkCode.code = null;
    try {
      return await generateLinkDeviceCode();
    } catch (err) {
      fire('conn.link_code_error', err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  // --- chats ------------------------------------------------------------------------------------------
  // chat/functions/find.ts: findOrCreateLatestChat resolves the chat WhatsApp really uses: after the LID
  // migration a `<phone>@c.us` contact's chat is `<digits>@lid`.
  async function findChat(chatId) {
    requireLogin();
    const id = chatId && chatId._serialized ? chatId._serialized : String(chatId);
    if (!/@(c\.us|lid|g\.us)$/.test(id)) throw wppError('invalid_wid', 'Invalid WID value for ' + id);
    const found = await api('/api/find', { client_id: state.clientId, wid: id });
    return { id: wid(found.id), unreadCount: found.unread || 0 };
  }

  function randomId() {
    return '3EB0' + Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  }

  function myWidFor(chat) {
    // chat/functions/prepareRawMessage.ts: groups address the sender by LID; 1:1 chats match the chat's mode.
    return chat.id.isGroup() || chat.id.isLid() ? wid(state.lid + '@lid') : wid(state.phone + '@c.us');
  }

  const DEFAULT_SEND_OPTIONS = { detectMentioned: true, linkPreview: true, markIsRead: true, waitForAck: true, delay: 0 };

  // chat/functions/sendRawMessage.ts -> prepareRawMessage.ts: resolve the chat, check a caller's messageId, the
  // quoted message (it must exist: getMessageById) and the mentions (users only), mark the chat read unless told
  // not to, send; the result is returned, never thrown.
  async function sendRaw(chatId, raw, options) {
    options = { ...DEFAULT_SEND_OPTIONS, ...options };
    const chat = await findChat(chatId);
    let key;
    if (options.messageId) {
      key = typeof options.messageId === 'string' ? parseKey(options.messageId) : options.messageId;
      if (!key.fromMe) throw wppError('message_key_is_not_from_me', 'Message key is not from me');
      if (!key.remote.equals(chat.id)) throw wppError('message_key_remote_id_is_not_same_of_chat', 'Message key remote ID is not same of chat');
    } else {
      // chat/functions/generateMessageID.ts: in groups the key's participant is our own LID
      key = msgKey(true, chat.id, randomId(), chat.id.isGroup() ? myWidFor(chat) : undefined);
    }
    const mentions = (options.mentionedList || []).map((m) => wid(m._serialized || m));
    for (const m of mentions) {
      if (m.server !== 'c.us' && m.server !== 'lid') throw wppError('mentioned_is_not_user', 'Mentioned is not an user');
    }
    const quoted = options.quotedMsg ? await getMessageById(options.quotedMsg) : null;
    if (options.markIsRead) {
      await api('/api/read', { client_id: state.clientId, chat: chat.id._serialized }).catch(() => null);
    }
    const sent = await api('/api/send', Object.assign({
      client_id: state.clientId, to: chat.id._serialized, id: key._serialized, type: raw.type, body: raw.body || '',
      quoted: quoted ? quoted.id._serialized : null, mentions: mentions.map((m) => m._serialized),
    }, raw.extra || {}));
    const msg = {
      id: key, from: myWidFor(chat), to: chat.id, body: raw.body, type: raw.type, t: sent.t, isNewMsg: true, ack: 0,
    };
    if (!msgStore.has(key._serialized)) {
      storeMsg(msg);
      await saveMsg(msg);
      queueMicrotask(() => fire('chat.new_message', msg));
    }
    const stored = msgStore.get(key._serialized);
    if (sent.result === 'OK') { if (stored.ack < sent.ack) setAck(stored, sent.ack); } else setAck(stored, -1);
    return {
      id: key._serialized,
      ack: stored.ack,
      from: myWidFor(chat)._serialized,
      to: chat.id._serialized,
      sendMsgResult: options.waitForAck ? { messageSendResult: sent.result } : null,
    };
  }

  // chat/functions/sendTextMessage.ts
  async function sendTextMessage(chatId, content, options = {}) {
    return sendRaw(chatId, { type: 'chat', body: String(content) }, options);
  }

  // WhatsApp's upload limits per media type (MediaGatingUtils.getUploadLimit), checked before anything is sent:
  // over it sendFileMessage throws 'file_too_large' (chat/functions/sendFileMessage.ts).
  const UPLOAD_LIMITS = { image: 16, video: 16, audio: 16, ptt: 16, sticker: 1, document: 100 };

  async function fileFrom(content, mimetype, filename) {
    const match = /^data:([^;,]+)?(;base64)?,(.*)$/s.exec(String(content));
    if (!match) throw wppError('invalid_file', 'content must be a data URL in this simulator');
    const bytes = match[2] ? b64bytes(match[3]) : new TextEncoder().encode(decodeURIComponent(match[3]));
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
    return { size: bytes.length, sha256, mimetype: mimetype || match[1] || 'application/octet-stream', filename: filename || null };
  }

  // chat/functions/sendFileMessage.ts: returns {id, ack, sendMsgResult} (no from/to); the caption defaults to the
  // file name; an audio with isPtt is a voice note ('ptt').
  async function sendFileMessage(chatId, content, options = {}) {
    options = { ...DEFAULT_SEND_OPTIONS, type: 'auto-detect', ...options };
    const file = await fileFrom(content, options.mimetype, options.filename);
    let type = options.type === 'auto-detect' ? (file.mimetype.split('/')[0] || 'document') : options.type;
    if (!UPLOAD_LIMITS[type]) type = 'document';
    if (type === 'audio' && options.isPtt) type = 'ptt';
    if (file.size > UPLOAD_LIMITS[type] * 1024 * 1024) {
      throw wppError('file_too_large', 'File size ' + file.size + ' exceeds the upload limit for ' + type + ' files');
    }
    const r = await sendRaw(chatId, {
      type, body: options.caption || file.filename || '',
      extra: { media: file, caption: options.caption || null },
    }, options);
    return { id: r.id, ack: r.ack, sendMsgResult: r.sendMsgResult };
  }

  // chat/functions/sendLocationMessage.ts
  async function sendLocationMessage(chatId, options) {
    const lat = typeof options.lat === 'string' ? parseFloat(options.lat) : options.lat;
    const lng = typeof options.lng === 'string' ? parseFloat(options.lng) : options.lng;
    const loc = options.name && options.address ? options.name + '\n' + options.address : options.name || options.address || '';
    return sendRaw(chatId, { type: 'location', body: '', extra: { location: { lat, lng, loc, url: options.url || null } } }, options);
  }

  // chat/functions/sendVCardContactMessage.ts: one contact is a 'vcard' message whose body is the vCard.
  async function sendVCardContactMessage(chatId, contacts, options = {}) {
    const list = Array.isArray(contacts) ? contacts : [contacts];
    if (list.length !== 1) throw wppError('unsupported', 'the simulator sends one contact at a time');
    const c = list[0];
    const id = String(c.id && c.id._serialized ? c.id._serialized : c.id || c);
    const phone = id.split('@')[0];
    const name = c.name || phone;
    const vcard = 'BEGIN:VCARD\nVERSION:3.0\nN:;' + name + ';;;\nFN:' + name + '\nTEL;type=CELL;type=VOICE;waid=' + phone + ':+' + phone + '\nEND:VCARD';
    return sendRaw(chatId, { type: 'vcard', body: vcard, extra: { vcard_name: name } }, options);
  }

  // chat/functions/sendReactionToMessage.ts: the message must exist; returns only {sendMsgResult}.
  async function sendReactionToMessage(messageId, reaction) {
    const msg = await getMessageById(messageId);
    const sent = await api('/api/react', { client_id: state.clientId, target: msg.id._serialized, emoji: reaction || '' });
    return { sendMsgResult: { messageSendResult: sent.result } };
  }

  // chat/functions/getMessageById.ts: MsgStore first, then the chat's history; `msg_not_found` otherwise.
  async function getMessageById(id) {
    requireLogin();
    const serialized = typeof id === 'string' ? id : id._serialized;
    const key = parseKey(serialized);
    const local = msgStore.get(key._serialized);
    if (local) return local;
    const row = (await storedMsgs()).find((r) => r.id === key._serialized);
    if (row) return loadMsg(row);
    try {
      const found = await api('/api/message?client_id=' + encodeURIComponent(state.clientId) + '&id=' + encodeURIComponent(key._serialized));
      return { id: parseKey(found.id), body: found.body, ack: found.ack, t: found.t, type: 'chat', to: wid(found.to) };
    } catch (err) {
      if (err.status === 404) throw wppError(err.message === 'chat_not_found' ? 'chat_not_found' : 'msg_not_found', 'Message ' + key._serialized + ' not found');
      throw err;
    }
  }

  // chat/functions/markIsComposing.ts, markIsRecording.ts (a duration), markIsPaused.ts: the account's presence
  // in the chat, seen by the contact (the simulator records it: GET /control/presence_sent).
  async function sendPresence(chatId, presence, duration) {
    const chat = await findChat(chatId);
    await api('/api/presence', { client_id: state.clientId, chat: chat.id._serialized, state: presence, duration: duration || null });
  }

  // chat/functions/deleteMessage.ts: with revoke, a message of ours is deleted for everyone.
  async function deleteMessage(chatId, ids, deleteMediaInDevice = false, revoke = false) {
    const single = !Array.isArray(ids);
    const results = [];
    for (const id of single ? [ids] : ids) {
      const msg = await getMessageById(id);
      const mine = !!msg.id.fromMe;
      const done = await api('/api/delete', { client_id: state.clientId, id: msg.id._serialized, revoke: !!(revoke && mine) });
      if (revoke && mine) {
        queueMicrotask(() => fire('chat.msg_revoke', {
          from: msg.id.remote, id: msgKey(true, msg.id.remote, randomId()), refId: msg.id, to: msg.id.remote, type: 'sender_revoke',
        }));
      }
      results.push({ id: msg.id._serialized, sendMsgResult: done.result, isRevoked: !!(revoke && mine), isDeleted: !revoke, isSentByMe: mine });
    }
    return single ? results[0] : results;
  }

  // chat/functions/editMessage.ts: only our own texts (canEditMsg); returns like a send, never throws a failed send.
  async function editMessage(msgId, newText, options = {}) {
    options = { ...DEFAULT_SEND_OPTIONS, ...options };
    const msg = await getMessageById(msgId);
    if (!msg.id.fromMe || (msg.type && msg.type !== 'chat')) throw wppError('edit_message_error', 'Cannot edit this message');
    if (options.markIsRead) await api('/api/read', { client_id: state.clientId, chat: msg.id.remote._serialized }).catch(() => null);
    const done = await api('/api/edit', { client_id: state.clientId, id: msg.id._serialized, body: String(newText).trim() });
    msg.body = String(newText).trim();
    queueMicrotask(() => fire('chat.msg_edited', { chat: msg.id.remote, id: msg.id._serialized, msg }));
    return { id: msg.id._serialized, ack: 1, sendMsgResult: { messageSendResult: done.result } };
  }

  // chat/functions/downloadMedia.ts: the Msg must carry mediaData; the bytes come from WhatsApp's media servers
  // (which forget them after a while: then the download fails).
  async function downloadMedia(id) {
    const msg = await getMessageById(id);
    if (!msg.mediaData) throw wppError('message_not_contains_media', 'Message ' + id + ' not contains media');
    const response = await fetch('/api/media/' + encodeURIComponent(msg.id._serialized));
    if (!response.ok) throw wppError('media_download_failed', 'HTTP ' + response.status + ' from the media server');
    const blob = await response.blob();
    return new Blob([await blob.arrayBuffer()], { type: msg.mediaData.mimetype || blob.type });
  }

  // contact/functions/getPnLidEntry.ts: only @c.us and @lid; a LID's phone number only if WhatsApp knows it.
  async function getPnLidEntry(contactId) {
    requireLogin();
    const id = contactId && contactId._serialized ? contactId._serialized : String(contactId);
    const w = wid(id);
    if (w.server !== 'c.us' && w.server !== 'lid') throw wppError('invalid_wid', 'Invalid WID value for ' + id + ' - getPnLidEntry only supports @c.us and @lid.');
    const found = await api('/api/pnlid', { client_id: state.clientId, wid: id });
    const part = (value) => (value ? { id: value.split('@')[0], server: value.split('@')[1], _serialized: value } : undefined);
    return { lid: part(found.lid), phoneNumber: part(found.phone), contact: undefined };
  }

  // contact/functions/queryWidExists.ts: null when the number is not on WhatsApp.
  async function queryWidExists(contactId) {
    requireLogin();
    const id = contactId && contactId._serialized ? contactId._serialized : String(contactId);
    const found = await api('/api/pnlid', { client_id: state.clientId, wid: id });
    if (!found.exists) return null;
    return { wid: wid(found.phone || id), biz: !!found.biz, lid: found.lid ? wid(found.lid) : undefined };
  }

  // Messages in the order they reached the page: `t` has whole seconds, so within one second the order this page
  // stored them in (older page loads' messages, without it, by id).
  function byArrival() {
    const seen = new Map(Array.from(msgStore.keys(), (k, i) => [k, i]));
    return (a, b) => a.t - b.t || (seen.has(a.id) && seen.has(b.id) ? seen.get(a.id) - seen.get(b.id) : (a.id < b.id ? -1 : 1));
  }

  // What WhatsApp syncs about the chats beside their messages (unread counts, the groups the account is in).
  async function chatMeta() {
    return api('/api/chat_meta?client_id=' + encodeURIComponent(state.clientId));
  }

  // A group's chat as ChatStore holds it, with its GroupMetadata (whatsapp/models/GroupMetadataModel.ts): the
  // participants are a collection of ParticipantModel {id, isAdmin, isSuperAdmin} (ParticipantModel.ts).
  function groupChat(g, unread, t) {
    const models = g.participants.map((p) => ({ id: wid(p.id), isAdmin: p.admin, isSuperAdmin: p.super_admin }));
    return {
      id: wid(g.id), name: g.subject, formattedTitle: g.subject, isGroup: true, isUser: false, t,
      unreadCount: unread, hasUnread: unread !== 0, archive: false,
      groupMetadata: { id: wid(g.id), subject: g.subject, participants: { length: models.length, getModelsArray: () => models.slice() } },
    };
  }

  // ChatStore: every chat with its unreadCount, most recent first (`t`: the last message's time; a group without
  // messages sorts by when it was made). lastReceivedKey is the chat's newest message key, own messages included
  // (chat/functions/sendFileMessage.ts waits for it to change to its own status message).
  async function chatModels() {
    const meta = await chatMeta();
    const rows = (await storedMsgs()).sort(byArrival());
    const chats = new Map();
    rows.forEach((row, rank) => chats.set(row.chat, { t: row.t, rank, lastReceivedKey: parseKey(row.id) }));
    const groups = new Map(meta.groups.map((g) => [g.id, g]));
    const models = [];
    for (const [id, c] of chats) {
      const unread = meta.unread[id] || 0;
      const chat = groups.has(id)
        ? groupChat(groups.get(id), unread, c.t)
        : {
          id: wid(id), name: undefined, formattedTitle: /@c\.us$/.test(id) ? '+' + id.split('@')[0] : undefined,
          isGroup: id.endsWith('@g.us'), isUser: !id.endsWith('@g.us'), t: c.t, unreadCount: unread,
          hasUnread: unread !== 0, archive: false,
        };
      chat.lastReceivedKey = c.lastReceivedKey;
      models.push([chat, c.rank]);
    }
    for (const g of meta.groups) if (!chats.has(g.id)) models.push([groupChat(g, meta.unread[g.id] || 0, g.t), -1]);
    // the newest last message first (within one second: the one that arrived last)
    return models.sort(([a, ra], [b, rb]) => b.t - a.t || rb - ra).map(([chat]) => chat);
  }

  // chat/functions/list.ts: filters, then a page of `count` from the chat `id` (that chat included); a chat it does
  // not know (chat.get: undefined) starts the page at the top; direction 'before' takes the `count` before it.
  async function listChats(options = {}) {
    requireLogin();
    const count = options.count == null ? Infinity : options.count;
    let models = await chatModels();
    if (options.onlyUsers) models = models.filter((c) => c.isUser);
    if (options.onlyGroups) models = models.filter((c) => c.id.isGroup());
    if (options.onlyWithUnreadMessage) models = models.filter((c) => c.hasUnread);
    const wanted = options.id ? String(options.id._serialized || options.id) : null;
    const start = wanted ? Math.max(models.findIndex((c) => c.id._serialized === wanted), 0) : 0;
    if (options.direction === 'before') {
      const from = Math.max(start - count, 0);
      return models.slice(from, start);
    }
    return models.slice(start, start + count);
  }

  // chat.get (assert/assertChat.ts assertGetChat): a chat ChatStore does not hold is `chat_not_found`.
  async function assertGetChat(chatId) {
    const id = chatId && chatId._serialized ? chatId._serialized : String(chatId);
    const chat = (await chatModels()).find((c) => c.id._serialized === id);
    if (!chat) throw wppError('chat_not_found', 'Chat not found for ' + id);
    return chat;
  }

  // chat/functions/getMessages.ts: `count` (default 20) messages `before` (default) or `after` the message `id`,
  // which is excluded; without an id the anchor is the chat's lastReceivedKey, which IS included (count - 1
  // before it, then it). Oldest first, from the page's own store.
  async function getMessages(chatId, options = {}) {
    requireLogin();
    const chat = await assertGetChat(chatId);
    const id = chat.id._serialized;
    const rows = (await storedMsgs()).filter((row) => row.chat === id).sort(byArrival());
    let count = options.count || 20;
    if (count === -1) count = Infinity;
    const anchorId = options.id || (chat.lastReceivedKey ? chat.lastReceivedKey.toString() : null);
    if (!anchorId) return [];
    const at = rows.findIndex((row) => row.id === String(anchorId));
    if (at < 0) return [];
    if (!options.id) count--;
    let found;
    if (options.direction === 'after') found = rows.slice(at + 1, at + 1 + count);
    else found = rows.slice(Math.max(at - count, 0), at);
    if (!options.id) found.push(rows[at]);
    return found.map((row) => msgStore.get(row.id) || loadMsg(row));  // the live Msg (its ack) where there is one
  }

  // group/functions/getAllGroups.ts: the groups the server lists (queryAllGroups), each mapped to chat.get(id).
  async function getAllGroups() {
    requireLogin();
    const models = await chatModels();
    return (await chatMeta()).groups.map((g) => models.find((c) => c.id._serialized === g.id));
  }

  // group/functions/getParticipants.ts -> ensureGroup.ts: chat_not_found, not_a_group, else the ParticipantModels.
  async function getParticipants(groupId) {
    requireLogin();
    const chat = await assertGetChat(groupId);
    if (!chat.id.isGroup()) throw wppError('not_a_group', 'Chat ' + chat.id._serialized + ' is not a group');
    return chat.groupMetadata.participants.getModelsArray();
  }

  const WPP = {
    version: '4.6.0',
    simulator: true,
    isInjected: true,
    isReady: false,
    isFullReady: false,
    on(name, cb) { if (!listeners.has(name)) listeners.set(name, new Set()); listeners.get(name).add(cb); return WPP; },
    off(name, cb) { (listeners.get(name) || new Set()).delete(cb); return WPP; },
    once(name, cb) { const w = (p) => { WPP.off(name, w); cb(p); }; return WPP.on(name, w); },
    loader: {
      onReady(cb) { if (WPP.isReady) cb(); else readyCallbacks.push(cb); },
      onFullReady(cb) { if (WPP.isFullReady) cb(); else WPP.once('conn.main_ready', cb); },
    },
    conn: {
      async getAuthCode() { return state.authCode; },
      isAuthenticated() { return state.authenticated; },
      isRegistered() { return state.authenticated; },
      isMainReady() { return state.mainReady; },
      isIdle() { return !state.authenticated && !state.authCode; },
      getStreamData() { return { mode: state.mode, info: state.info }; },
      getMyUserId() { return state.phone ? wid(state.phone + '@c.us') : undefined; },
      getMyUserLid() { return state.lid ? wid(state.lid + '@lid') : undefined; },
      getBuildConstants() { return WPP.isReady ? { VERSION_STR: window.Debug.VERSION } : null; },
      async refreshQR() { await nextQr(); return state.authCode; },
      async logout() {
        if (!state.authenticated) return false;
        await api('/api/logout', { client_id: state.clientId });
        await loggedOut('user_initiated');
        return true;
      },
      genLinkDeviceCodeForPhoneNumber,
      startLinkDeviceCodeForPhoneNumber,
      refreshLinkDeviceCode,
      cancelLinkDeviceCode() { cancelLinkDeviceCode(); nextQr(); },
    },
    chat: {
      find: findChat,
      list: listChats,
      getMessages,
      sendTextMessage,
      sendFileMessage,
      sendLocationMessage,
      sendVCardContactMessage,
      sendReactionToMessage,
      downloadMedia,
      markIsComposing(chatId, duration) { return sendPresence(chatId, 'composing', duration); },
      markIsRecording(chatId, duration) { return sendPresence(chatId, 'recording', duration); },
      markIsPaused(chatId) { return sendPresence(chatId, 'paused'); },
      deleteMessage,
      editMessage,
      getMessageById,
      async markIsRead(chatId) {
        const chat = await findChat(chatId);
        await api('/api/read', { client_id: state.clientId, chat: chat.id._serialized });
        return { wid: chat.id, unreadCount: chat.unreadCount };
      },
    },
    contact: { getPnLidEntry, queryWidExists },
    group: { getAllGroups, getParticipants },
    call: {
      // call/functions/reject.ts
      async reject(callId) { await api('/api/call_reject', { client_id: state.clientId, id: String(callId) }); return true; },
    },
    whatsapp: {
      MsgStore: {
        get(id) { return msgStore.get(String(id && id._serialized ? id._serialized : id)); },
        on(name, cb) { if (!msgStoreListeners.has(name)) msgStoreListeners.set(name, new Set()); msgStoreListeners.get(name).add(cb); },
        off(name, cb) { (msgStoreListeners.get(name) || new Set()).delete(cb); },
      },
    },
  };
  WPP.webpack = WPP.loader;
  window.WPP = WPP;
  // linkDeviceCodeLifecycle.ts: the managed flow is cancelled by authenticated, logout and main_ready.
  WPP.on('conn.logout', cancelLinkDeviceCode);
  WPP.on('conn.main_ready', cancelLinkDeviceCode);

  async function boot() {
    if (config.waJsIncompatible) {
      // A WhatsApp Web build that this wa-js cannot hook: the bundle loads, `WPP.isReady` never turns true.
      return;
    }
    WPP.isReady = true;
    for (const cb of readyCallbacks.splice(0)) { try { cb(); } catch (err) { console.error(err); } }
    pollLoop();
    if (!(await restore())) {
      fire('conn.require_auth');
      await nextQr();
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
