async () => {
  const subtle = crypto.subtle;
  const aes = await subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
  const hmac = await subtle.importKey('raw', new Uint8Array(32).fill(7), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);
  const ec = await subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign', 'verify']);
  const ed = await subtle.generateKey({name: 'Ed25519'}, false, ['sign', 'verify']);
  const iv = new Uint8Array(12).fill(1);
  const sealed = await subtle.encrypt({name: 'AES-GCM', iv}, aes, new TextEncoder().encode('secret'));
  const buffer = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer;
  const shared = {n: 1};
  const value = {
    aes, hmac, ec, ed, sealed, iv,
    blob: new Blob(['blob-bytes'], {type: 'text/plain'}),
    file: new File(['file-bytes'], 'a.txt', {type: 'text/plain', lastModified: 42}),
    buffer, u8: new Uint8Array(buffer, 2, 4), view: new DataView(buffer, 1, 3), f32: new Float32Array([1.5, -2]),
    big: new BigUint64Array([2n ** 63n]), date: new Date(1700000000000), bad: new Date(NaN), re: /x+/y,
    map: new Map([[1, shared]]), set: new Set([shared]), shared, holes: [1, , 3], bigint: -(2n ** 80n),
    nums: [NaN, -0, Infinity, -Infinity], undef: undefined, nul: null, boxed: new String('s'),
    dollar: {$: 'not a tag'}, err: new RangeError('boom'), text: 'ünïcode ✓',
  };
  value.self = value;
  const open = (name, version, upgrade) => new Promise((resolve, reject) => {
    const r = indexedDB.open(name, version);
    r.onupgradeneeded = () => upgrade(r.result);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const done = (tx) => new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  const a = await open('alpha', 3, (db) => {
    db.createObjectStore('kv');
    const rows = db.createObjectStore('rows', {keyPath: ['chat', 'id']});
    rows.createIndex('by_t', 't', {unique: false});
    rows.createIndex('tags', 'tags', {multiEntry: true});
    db.createObjectStore('log', {autoIncrement: true});
  });
  let tx = a.transaction(['kv', 'rows', 'log'], 'readwrite');
  tx.objectStore('kv').put(value, 'everything');
  tx.objectStore('kv').put('by date', new Date(5));
  tx.objectStore('kv').put('by array', [1, 'a']);
  tx.objectStore('kv').put('by binary', new Uint8Array([9, 9]));
  tx.objectStore('rows').put({chat: 'c1', id: 2, t: 10, tags: ['x', 'y']});
  tx.objectStore('log').add({line: 1});
  tx.objectStore('log').add({line: 2});
  await done(tx);
  a.close();
  const b = await open('beta', 1, (db) => db.createObjectStore('empty'));
  b.close();
  localStorage.setItem('token', 'abc');
  localStorage.setItem('json', JSON.stringify({a: 1}));
  return true;
}
