// wa-gateway's WebCrypto wrapper (the `context` strategy's init script, main world, before any page script).
// WhatsApp Web keeps non-extractable CryptoKeys in IndexedDB; a browser context cannot be archived with them.
// This makes every key the page creates or imports exportable underneath, and keeps the page's view unchanged:
// `extractable` reports what the page asked for, exportKey/wrapKey refuse such a key as the browser would.
// Keys read back from storage (made in an earlier load, or restored by us) report extractable=false (public keys
// true): that is how WhatsApp creates them. HKDF/PBKDF2 keys cannot be exportable by spec and are left alone, and
// a call the browser refuses with extractable=true is made again as the page asked (the key then stays truly
// non-extractable: the capture counts it as lost).
(() => {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) return;
  const proto = Object.getPrototypeOf(subtle);
  const native = {
    generateKey: proto.generateKey, importKey: proto.importKey, deriveKey: proto.deriveKey,
    unwrapKey: proto.unwrapKey, exportKey: proto.exportKey, wrapKey: proto.wrapKey,
  };
  const extractableGetter = Object.getOwnPropertyDescriptor(CryptoKey.prototype, 'extractable').get;
  const asked = new WeakMap(); // key -> the extractable flag the page asked for
  const noExport = new Set(['HKDF', 'PBKDF2']);
  const algName = (alg) => String(typeof alg === 'string' ? alg : alg && alg.name).toUpperCase();
  const remember = (result, extractable) => {
    if (result instanceof CryptoKey) asked.set(result, !!extractable);
    else if (result && result.privateKey instanceof CryptoKey) asked.set(result.privateKey, !!extractable);
    return result;
  };
  const define = (name, fn) => {
    Object.defineProperty(fn, 'name', { value: name });
    Object.defineProperty(fn, 'length', { value: native[name].length });
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: true });
  };
  // Each key-making method is called with extractable=true; if the browser refuses that (a JWK marked ext:false
  // inside a wrapped key, an algorithm that cannot be exportable), the page's own call is made instead, so the
  // page never meets an error it would not have met. A JWK marked ext:false is imported as exportable.
  const wrap = (name, flagAt, algAt) => define(name, function (...args) {
    const extractable = args[flagAt];
    if (noExport.has(algName(args[algAt]))) return native[name].apply(this, args);
    const forced = args.slice();
    forced[flagAt] = true;
    const jwkNotExt = name === 'importKey' && forced[0] === 'jwk' && forced[1] && forced[1].ext === false;
    if (jwkNotExt && !extractable) forced[1] = { ...forced[1], ext: true };
    return native[name].apply(this, forced).then((r) => remember(r, extractable), () => native[name].apply(this, args));
  });
  wrap('generateKey', 1, 0);
  wrap('importKey', 3, 2);
  wrap('deriveKey', 3, 2);
  wrap('unwrapKey', 5, 4);
  const refused = () => Promise.reject(new DOMException('key is not extractable', 'InvalidAccessError'));
  define('exportKey', function exportKey(format, key) {
    return asked.get(key) === false ? refused() : native.exportKey.call(this, format, key);
  });
  define('wrapKey', function wrapKey(format, key, wrapping, alg) {
    return asked.get(key) === false ? refused() : native.wrapKey.call(this, format, key, wrapping, alg);
  });
  Object.defineProperty(CryptoKey.prototype, 'extractable', {
    configurable: true,
    enumerable: true,
    get: function extractable() {
      const real = extractableGetter.call(this);
      if (asked.has(this)) return asked.get(this);
      return this.type === 'public' ? real : false;
    },
  });
})();
