// Restores what capture_page_state.js captured into a fresh context, on a blank page of the same origin before
// the site's own page loads: databases with their versions, stores, indexes and records, then localStorage.
// CryptoKeys are imported with their algorithm and usages and stay exportable underneath (so the next capture
// can take them again); the WebCrypto wrapper shows them to the page as non-extractable. Returns counts.
// The state arrives deflated and base64-encoded: a 1 MiB state costs about a tenth of the protocol and renderer
// time as a ~75 KiB string that it costs as itself (Python -> Playwright's driver -> CDP -> V8, each copying it).
async (deflated) => {
  const bytes = (b64) => (Uint8Array.fromBase64 ? Uint8Array.fromBase64(b64) : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  const inflated = new Blob([bytes(deflated)]).stream().pipeThrough(new DecompressionStream('deflate'));
  const state = JSON.parse(await new Response(inflated).text());
  const keys = new Map(); // key node -> CryptoKey, imported before any transaction opens (IDB would auto-commit)
  let lostKeys = 0;
  function decoder() {
    const refs = [];
    const decode = (n) => {
      if (n === null || typeof n !== 'object') return n;
      if (Array.isArray(n)) {
        const out = new Array(n.length);
        refs.push(out);
        n.forEach((x, i) => { if (!(x && x.$ === 'hole')) out[i] = decode(x); });
        return out;
      }
      switch (n.$) {
        case undefined: { const out = {}; refs.push(out); for (const k of Object.keys(n)) out[k] = decode(n[k]); return out; }
        case 'u': return undefined;
        case 'bi': return BigInt(n.v);
        case 'n': return n.v === '-0' ? -0 : Number(n.v);
        case 'ref': return refs[n.i];
      }
      const slot = refs.length;
      refs.push(undefined);
      const set = (v) => { refs[slot] = v; return v; };
      switch (n.$) {
        case 'o': { const out = set({}); for (const [k, x] of n.e) Object.defineProperty(out, k, { value: decode(x), enumerable: true, writable: true, configurable: true }); return out; }
        case 'd': return set(new Date(n.v === null ? NaN : n.v));
        case 're': return set(new RegExp(n.s, n.f));
        case 'ab': return set(bytes(n.b).buffer);
        case 'view': {
          const buffer = decode(n.buf);
          return set(n.c === 'DataView' ? new DataView(buffer, n.o, n.l) : new globalThis[n.c](buffer, n.o, n.l));
        }
        case 'map': { const out = set(new Map()); for (const [k, x] of n.e) out.set(decode(k), decode(x)); return out; }
        case 'set': { const out = set(new Set()); for (const x of n.e) out.add(decode(x)); return out; }
        case 'blob': return set(new Blob([bytes(n.b)], { type: n.t }));
        case 'file': return set(new File([bytes(n.b)], n.n, { type: n.t, lastModified: n.m }));
        case 'key': return set(keys.get(n));
        case 'lostkey': return set(null);
        case 'box': return set(Object(decode(n.v)));
        case 'err': { const e = new Error(n.m); e.name = n.n; return set(e); }
      }
      throw new Error('unknown node ' + n.$);
    };
    return decode;
  }
  const imports = [];
  const walk = (n) => {
    if (n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) { n.forEach(walk); return; }
    if (n.$ === 'key') {
      const alg = decoder()(n.alg);
      imports.push(crypto.subtle.importKey('jwk', n.jwk, alg, true, n.use).then((k) => keys.set(n, k)));
      return;
    }
    if (n.$ === 'lostkey') lostKeys += 1;
    for (const k of Object.keys(n)) walk(n[k]);
  };
  walk(state.indexedDB);
  await Promise.all(imports);
  const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  let records = 0;
  for (const database of state.indexedDB) {
    await request(indexedDB.deleteDatabase(database.name));
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open(database.name, database.version);
      open.onupgradeneeded = () => {
        for (const meta of database.stores) {
          const store = open.result.createObjectStore(meta.name, { keyPath: meta.keyPath, autoIncrement: meta.autoIncrement });
          for (const index of meta.indexes) store.createIndex(index.name, index.keyPath, { unique: index.unique, multiEntry: index.multiEntry });
        }
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
      open.onblocked = () => reject(new Error('database ' + database.name + ' is open elsewhere'));
    });
    // Every record of the database in one readwrite transaction with relaxed durability (an off-the-record
    // context keeps IndexedDB in memory; nothing to flush): measured ~10 % less browser and renderer CPU than the
    // same puts inside the upgrade transaction.
    const names = database.stores.map((meta) => meta.name);
    try {
      if (names.length) {
        await new Promise((resolve, reject) => {
          const tx = db.transaction(names, 'readwrite', { durability: 'relaxed' });
          for (const meta of database.stores) {
            const store = tx.objectStore(meta.name);
            if (meta.keyPath === null) for (const [key, value] of meta.records) store.put(decoder()(value), decoder()(key));
            else for (const value of meta.records) store.put(decoder()(value));
            records += meta.records.length;
          }
          tx.oncomplete = resolve;
          tx.onerror = () => reject(tx.error);
          tx.onabort = () => reject(tx.error || new Error('restore transaction aborted'));
        });
      }
    } finally {
      db.close();
    }
  }
  localStorage.clear();
  for (const [k, v] of state.localStorage) localStorage.setItem(k, v);
  return { databases: state.indexedDB.length, records, lostKeys };
}
