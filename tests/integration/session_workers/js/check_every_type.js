async () => {
  const problems = [];
  const check = (what, ok) => { if (!ok) problems.push(what); };
  const open = (name) => new Promise((resolve, reject) => {
    const r = indexedDB.open(name); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const get = (db, store, key) => new Promise((resolve, reject) => {
    const r = db.transaction(store).objectStore(store).get(key); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
  });
  const dbs = (await indexedDB.databases()).map((d) => d.name + '@' + d.version).sort().join();
  check('databases ' + dbs, dbs === 'alpha@3,beta@1');
  const a = await open('alpha');
  const v = await get(a, 'kv', 'everything');
  const subtle = crypto.subtle;
  for (const [name, key, alg, usages] of [['aes', v.aes, 'AES-GCM', 'decrypt,encrypt'], ['hmac', v.hmac, 'HMAC', 'sign'],
      ['ec', v.ec.privateKey, 'ECDSA', 'sign'], ['ed', v.ed.privateKey, 'Ed25519', 'sign']]) {
    check(name + ' is a CryptoKey', key instanceof CryptoKey);
    check(name + ' reports non-extractable', key.extractable === false);
    check(name + ' algorithm', key.algorithm.name === alg);
    check(name + ' usages ' + key.usages, [...key.usages].sort().join() === usages);
  }
  check('hmac hash', v.hmac.algorithm.hash.name === 'SHA-256');
  check('ec curve', v.ec.privateKey.algorithm.namedCurve === 'P-256');
  const plain = new TextDecoder().decode(await subtle.decrypt({name: 'AES-GCM', iv: v.iv}, v.aes, v.sealed));
  check('aes decrypts the sealed value', plain === 'secret');
  const data = new Uint8Array([1, 2, 3]);
  const ecSig = await subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, v.ec.privateKey, data);
  check('ec pair still matches', await subtle.verify({name: 'ECDSA', hash: 'SHA-256'}, v.ec.publicKey, ecSig, data));
  check('ed pair still matches', await subtle.verify('Ed25519', v.ed.publicKey, await subtle.sign('Ed25519', v.ed.privateKey, data), data));
  check('blob', v.blob instanceof Blob && v.blob.type === 'text/plain' && (await v.blob.text()) === 'blob-bytes');
  check('file', v.file instanceof File && v.file.name === 'a.txt' && v.file.lastModified === 42 && (await v.file.text()) === 'file-bytes');
  check('buffer', v.buffer instanceof ArrayBuffer && new Uint8Array(v.buffer).join() === '1,2,3,4,5,6,7,8');
  check('u8 view shares the buffer', v.u8 instanceof Uint8Array && v.u8.buffer === v.buffer && v.u8.byteOffset === 2 && v.u8.join() === '3,4,5,6');
  check('dataview', v.view instanceof DataView && v.view.buffer === v.buffer && v.view.byteOffset === 1 && v.view.byteLength === 3 && v.view.getUint8(0) === 2);
  check('f32', v.f32 instanceof Float32Array && v.f32.join() === '1.5,-2');
  check('bigint64', v.big instanceof BigUint64Array && v.big[0] === 2n ** 63n);
  check('date', v.date instanceof Date && v.date.getTime() === 1700000000000);
  check('invalid date', v.bad instanceof Date && Number.isNaN(v.bad.getTime()));
  check('regexp', v.re instanceof RegExp && v.re.source === 'x+' && v.re.flags === 'y');
  check('shared references', v.map.get(1) === v.shared && v.set.has(v.shared) && v.self === v);
  check('holes', v.holes.length === 3 && !(1 in v.holes) && v.holes[2] === 3);
  check('bigint', v.bigint === -(2n ** 80n));
  check('numbers', Number.isNaN(v.nums[0]) && Object.is(v.nums[1], -0) && v.nums[2] === Infinity && v.nums[3] === -Infinity);
  check('undefined and null', 'undef' in v && v.undef === undefined && v.nul === null);
  check('boxed', v.boxed instanceof String && String(v.boxed) === 's');
  check('a $ key is data', v.dollar.$ === 'not a tag');
  check('error', v.err instanceof Error && v.err.name === 'RangeError' && v.err.message === 'boom');
  check('text', v.text === 'ünïcode ✓');
  check('date key', (await get(a, 'kv', new Date(5))) === 'by date');
  check('array key', (await get(a, 'kv', [1, 'a'])) === 'by array');
  check('binary key', (await get(a, 'kv', new Uint8Array([9, 9]))) === 'by binary');
  const rows = a.transaction('rows').objectStore('rows');
  check('key path', JSON.stringify(rows.keyPath) === '["chat","id"]');
  check('indexes', [...rows.indexNames].join() === 'by_t,tags' && rows.index('tags').multiEntry && !rows.index('by_t').unique);
  check('row by index', (await new Promise((r) => { const q = rows.index('tags').get('y'); q.onsuccess = () => r(q.result); })).id === 2);
  const log = a.transaction('log', 'readwrite').objectStore('log');
  check('auto increment continues', log.autoIncrement && (await new Promise((r) => { const q = log.add({line: 3}); q.onsuccess = () => r(q.result); })) === 3);
  a.close();
  check('localStorage', localStorage.getItem('token') === 'abc' && localStorage.getItem('json') === '{"a":1}' && localStorage.length === 2);
  return problems;
}
