// The WhatsApp Web simulator's `window.WPP`: the names and shapes of @wppconnect/wa-js that wa-gateway uses.
// Auth lives where WhatsApp Web keeps it: IndexedDB (database "wawc", with a non-extractable CryptoKey)
// and localStorage; a page that finds both logs in again without a QR code.
(function () {
  'use strict';
  const listeners = new Map();
  const readyCallbacks = [];
  const state = {
    clientId: 'c_' + Math.random().toString(36).slice(2) + Date.now().toString(36),
    mode: 'OPENING',
    info: 'NORMAL',
    authenticated: false,
    phone: null,
    deviceId: null,
    authCode: null,
    qrTimer: null,
    qrInterval: 20000,
  };

  function fire(name, payload) {
    for (const cb of Array.from(listeners.get(name) || [])) {
      try { cb(payload); } catch (err) { console.error('listener for ' + name + ' failed', err); }
    }
  }

  function wid(serialized) {
    const [user, server] = String(serialized).split('@');
    return { user, server: server || 'c.us', _serialized: user + '@' + (server || 'c.us'), toString() { return this._serialized; } };
  }

  function msgKey(fromMe, remote, id) {
    const r = typeof remote === 'string' ? wid(remote) : remote;
    return { fromMe, remote: r, id, _serialized: (fromMe ? 'true' : 'false') + '_' + r._serialized + '_' + id, toString() { return this._serialized; } };
  }

  function parseKey(serialized) {
    const parts = String(serialized).split('_');
    if (parts.length < 3) throw Object.assign(new Error('invalid message id'), { code: 'invalid_message_id' });
    return msgKey(parts[0] === 'true', parts[1], parts.slice(2).join('_'));
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
  function idb() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open('wawc', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('user');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  async function idbDo(mode, fn) {
    const db = await idb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('user', mode);
      const request = fn(tx.objectStore('user'));
      tx.oncomplete = () => { db.close(); resolve(request && request.result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  }
  const readAuth = () => idbDo('readonly', (s) => s.get('auth'));
  const writeAuth = (value) => idbDo('readwrite', (s) => s.put(value, 'auth'));
  async function clearAuth() {
    await idbDo('readwrite', (s) => s.delete('auth'));
    localStorage.removeItem('WASecretBundle');
    localStorage.removeItem('last-wid-md');
  }

  function b64bytes(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }
  function bytesb64(buffer) {
    return btoa(String.fromCharCode.apply(null, Array.from(new Uint8Array(buffer))));
  }

  // --- connection state -------------------------------------------------------------------------------
  function setMode(mode) {
    if (state.mode === mode) return;
    state.mode = mode;
    const el = document.getElementById('mode');
    if (el) el.textContent = mode;
    fire('conn.stream_mode_changed', mode);
  }

  function stopQr() {
    if (state.qrTimer) clearTimeout(state.qrTimer);
    state.qrTimer = null;
  }

  async function nextQr() {
    stopQr();
    if (state.authenticated) return;
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

  function loggedIn(phone, deviceId, fresh) {
    stopQr();
    state.authCode = null;
    state.authenticated = true;
    state.phone = phone;
    state.deviceId = deviceId;
    const el = document.getElementById('qr');
    if (el) el.textContent = '';
    if (fresh) fire('conn.authenticated');
    setMode('SYNCING');
    setTimeout(() => {
      if (!state.authenticated) return;
      setMode('MAIN');
      WPP.isFullReady = true;
      fire('conn.main_ready');
    }, 50);
  }

  async function loggedOut(reason) {
    state.authenticated = false;
    state.phone = null;
    state.deviceId = null;
    await clearAuth();
    fire('conn.logout_reason', reason);
    fire('conn.logout');
    fire('conn.require_auth');
    nextQr();
  }

  async function restore() {
    const saved = await readAuth().catch(() => undefined);
    const bundle = JSON.parse(localStorage.getItem('WASecretBundle') || 'null');
    if (!saved || !bundle) return false;
    if (!(saved.key instanceof CryptoKey)) {
      console.warn('stored key is not a CryptoKey (lost in a storage round trip): a new QR scan is needed');
      await clearAuth();
      return false;
    }
    try {
      const { nonce } = await api('/api/challenge', { client_id: state.clientId });
      const sig = await crypto.subtle.sign('HMAC', saved.key, new TextEncoder().encode(nonce));
      const result = await api('/api/login', {
        client_id: state.clientId, device_id: saved.device_id, token: bundle.token, nonce, sig: bytesb64(sig),
      });
      loggedIn(result.phone, saved.device_id, false);
      if (result.offline) setMode('OFFLINE');
      return true;
    } catch (err) {
      if (err.status === 401) await clearAuth();
      return false;
    }
  }

  async function onServerEvent(event) {
    switch (event.type) {
      case 'paired': {
        const key = await crypto.subtle.importKey('raw', b64bytes(event.key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        await writeAuth({ device_id: event.device_id, phone: event.phone, key, linked_at: Date.now() });
        localStorage.setItem('WASecretBundle', JSON.stringify({ device_id: event.device_id, token: event.token }));
        localStorage.setItem('last-wid-md', JSON.stringify(event.phone + ':1@c.us'));
        loggedIn(event.phone, event.device_id, true);
        break;
      }
      case 'message': {
        const from = wid(event.from);
        fire('chat.new_message', {
          id: msgKey(false, from, event.id), from, to: wid(event.to), body: event.body, type: event.msg_type,
          t: event.t, isNewMsg: true, ack: 1,
        });
        break;
      }
      case 'ack':
        fire('chat.msg_ack_change', { ack: event.ack, chat: wid(event.chat), ids: event.ids });
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
    if (!state.authenticated) throw Object.assign(new Error('not logged in'), { code: 'not_authenticated' });
  }

  const WPP = {
    version: 'simulator',
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
      isMainReady() { return state.authenticated && state.mode === 'MAIN'; },
      isIdle() { return !state.authenticated && !state.authCode; },
      getStreamData() { return { mode: state.mode, info: state.info }; },
      getMyUserId() { return state.phone ? wid(state.phone + '@c.us') : undefined; },
      async refreshQR() { await nextQr(); return state.authCode; },
      async logout() {
        if (!state.authenticated) return false;
        await api('/api/logout', { client_id: state.clientId });
        await loggedOut('user_initiated');
        return true;
      },
      async genLinkDeviceCodeForPhoneNumber(phone, sendPushNotification = true) {
        if (state.authenticated) throw Object.assign(new Error('already authenticated'), { code: 'already_authenticated' });
        const { code } = await api('/api/link_code', { client_id: state.clientId, phone: String(phone).replace(/\D/g, '') });
        stopQr();
        fire('conn.link_code_change', code);
        return code;
      },
    },
    chat: {
      async sendTextMessage(chatId, content, options = {}) {
        requireLogin();
        const chat = wid(chatId);
        let key;
        if (options.messageId) {
          key = typeof options.messageId === 'string' ? parseKey(options.messageId) : options.messageId;
          if (!key.fromMe) throw Object.assign(new Error('Message key is not from me'), { code: 'message_key_is_not_from_me' });
          if (key.remote._serialized !== chat._serialized) throw Object.assign(new Error('Message key remote ID is not same of chat'), { code: 'message_key_remote_id_is_not_same_of_chat' });
        } else {
          key = msgKey(true, chat, '3EB0' + Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase());
        }
        const sent = await api('/api/send', { client_id: state.clientId, to: chat._serialized, body: String(content), id: key._serialized });
        return { id: sent.id, ack: sent.ack, sendMsgResult: Promise.resolve('OK') };
      },
      async getMessageById(id) {
        requireLogin();
        const serialized = typeof id === 'string' ? id : id._serialized;
        try {
          const found = await api('/api/message?client_id=' + encodeURIComponent(state.clientId) + '&id=' + encodeURIComponent(serialized));
          return { id: parseKey(found.id), body: found.body, ack: found.ack, t: found.t, type: 'chat', to: wid(found.to) };
        } catch (err) {
          if (err.status === 404) throw Object.assign(new Error('Message not found'), { code: 'msg_not_found' });
          throw err;
        }
      },
    },
  };
  WPP.webpack = WPP.loader;
  window.WPP = WPP;

  async function boot() {
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
