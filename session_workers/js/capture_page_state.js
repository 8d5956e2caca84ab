// Captures the page's origin storage for the `context` strategy: every IndexedDB database, store (with its
// key path, auto-increment flag and indexes) and record, and localStorage. Runs in an isolated world (same
// storage, its own unwrapped WebCrypto), so the page's scripts neither see nor influence it. Values are encoded
// as JSON with `$`-tagged nodes for what JSON cannot hold (CryptoKey as JWK, Blob/File, ArrayBuffer, typed
// arrays and DataView with their offsets, Date, RegExp, Map, Set, BigInt, undefined, NaN/Infinity/-0, shared
// references). A key that cannot be exported (created before the wrapper, or HKDF/PBKDF2) is counted as lost.
async () => {
  const pending = [];
  const b64 = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  let lostKeys = 0;
  const views = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
    'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Float16Array'];
  function encoder() {
    const seen = new Map();
    const encode = (v) => {
      switch (typeof v) {
        case 'string': case 'boolean': return v;
        case 'undefined': return { $: 'u' };
        case 'bigint': return { $: 'bi', v: v.toString() };
        case 'number':
          if (Number.isFinite(v) && !Object.is(v, -0)) return v;
          return { $: 'n', v: Object.is(v, -0) ? '-0' : String(v) };
      }
      if (v === null) return null;
      if (typeof v !== 'object') return { $: 'u' };
      if (seen.has(v)) return { $: 'ref', i: seen.get(v) };
      seen.set(v, seen.size);
      if (Array.isArray(v)) {
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = i in v ? encode(v[i]) : { $: 'hole' };
        return out;
      }
      if (v instanceof Date) return { $: 'd', v: Number.isNaN(v.getTime()) ? null : v.getTime() };
      if (v instanceof RegExp) return { $: 're', s: v.source, f: v.flags };
      if (v instanceof ArrayBuffer) return { $: 'ab', b: b64(v) };
      if (ArrayBuffer.isView(v)) {
        const kind = v instanceof DataView ? 'DataView' : views.find((name) => globalThis[name] && v instanceof globalThis[name]);
        const length = v instanceof DataView ? v.byteLength : v.length;
        return { $: 'view', c: kind, buf: encode(v.buffer), o: v.byteOffset, l: length };
      }
      if (v instanceof Map) return { $: 'map', e: Array.from(v, ([k, x]) => [encode(k), encode(x)]) };
      if (v instanceof Set) return { $: 'set', e: Array.from(v, encode) };
      if (v instanceof Blob) {
        const node = v instanceof File ? { $: 'file', t: v.type, n: v.name, m: v.lastModified } : { $: 'blob', t: v.type };
        pending.push(v.arrayBuffer().then((buffer) => { node.b = b64(buffer); }));
        return node;
      }
      if (v instanceof CryptoKey) {
        const node = { $: 'key', type: v.type, alg: encoder()(v.algorithm), use: Array.from(v.usages) };
        pending.push(crypto.subtle.exportKey('jwk', v).then(
          (jwk) => { node.jwk = jwk; },
          () => { node.$ = 'lostkey'; lostKeys += 1; },
        ));
        return node;
      }
      if (v instanceof Boolean || v instanceof Number || v instanceof String) return { $: 'box', v: encode(v.valueOf()) };
      if (v instanceof Error) return { $: 'err', n: v.name, m: v.message };
      const out = {};
      const entries = Object.keys(v);
      if (entries.includes('$')) return { $: 'o', e: entries.map((k) => [k, encode(v[k])]) };
      for (const k of entries) out[k] = encode(v[k]);
      return out;
    };
    return encode;
  }
  const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const databases = [];
  let records = 0;
  const listed = (await indexedDB.databases()).filter((d) => d.name).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const info of listed) {
    const db = await request(indexedDB.open(info.name));
    const names = Array.from(db.objectStoreNames);
    const stores = [];
    if (names.length) {
      const tx = db.transaction(names, 'readonly');
      const reads = names.map((name) => {
        const store = tx.objectStore(name);
        const meta = {
          name, keyPath: store.keyPath, autoIncrement: store.autoIncrement,
          indexes: Array.from(store.indexNames, (n) => {
            const index = store.index(n);
            return { name: n, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry };
          }),
        };
        return Promise.all([request(store.getAllKeys()), request(store.getAll())]).then(([keys, values]) => ({ meta, keys, values }));
      });
      for (const { meta, keys, values } of await Promise.all(reads)) {
        // In-line keys are part of the value: only out-of-line keys are stored beside it.
        meta.records = meta.keyPath === null ? keys.map((k, i) => [encoder()(k), encoder()(values[i])]) : values.map((v) => encoder()(v));
        records += keys.length;
        stores.push(meta);
      }
    }
    databases.push({ name: db.name, version: db.version, stores });
    db.close();
  }
  const local = [];
  for (let i = 0; i < localStorage.length; i++) local.push([localStorage.key(i), localStorage.getItem(localStorage.key(i))]);
  local.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  await Promise.all(pending);
  const state = { format: 'wagw-page-state/1', origin: location.origin, localStorage: local, indexedDB: databases, lostKeys };
  // Deflated before it leaves the page: ~75 KiB instead of ~1 MiB through CDP, Playwright's driver and Python.
  const deflated = new Blob([JSON.stringify(state)]).stream().pipeThrough(new CompressionStream('deflate'));
  return { deflated: b64(await new Response(deflated).arrayBuffer()), origin: location.origin, lostKeys, records };
}
