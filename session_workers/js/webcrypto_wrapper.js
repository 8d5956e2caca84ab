// wa-gateway's WebCrypto wrapper (the `context` strategy's init script, main world, before any page script).
// WhatsApp Web keeps non-extractable CryptoKeys in IndexedDB; a browser context cannot be archived with them.
// This makes every key the page creates or imports exportable underneath, and keeps the page's view unchanged:
// `extractable` reports what the page asked for, exportKey/wrapKey refuse such a key as the browser would.
// Keys read back from storage (made in an earlier load, or restored by us) report extractable=false (public keys
// true): that is how WhatsApp creates them. HKDF/PBKDF2 keys cannot be exportable by spec and are left alone.
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
  const define = (name, fn) => Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
  define('generateKey', function generateKey(alg, extractable, usages) {
    return native.generateKey.call(this, alg, true, usages).then((r) => remember(r, extractable));
  });
  define('importKey', function importKey(format, data, alg, extractable, usages) {
    if (noExport.has(algName(alg))) return native.importKey.call(this, format, data, alg, extractable, usages);
    return native.importKey.call(this, format, data, alg, true, usages).then((r) => remember(r, extractable));
  });
  define('deriveKey', function deriveKey(alg, base, derived, extractable, usages) {
    if (noExport.has(algName(derived))) return native.deriveKey.call(this, alg, base, derived, extractable, usages);
    return native.deriveKey.call(this, alg, base, derived, true, usages).then((r) => remember(r, extractable));
  });
  define('unwrapKey', function unwrapKey(format, wrapped, unwrapping, unwrapAlg, keyAlg, extractable, usages) {
    if (noExport.has(algName(keyAlg))) return native.unwrapKey.call(this, format, wrapped, unwrapping, unwrapAlg, keyAlg, extractable, usages);
    return native.unwrapKey.call(this, format, wrapped, unwrapping, unwrapAlg, keyAlg, true, usages).then((r) => remember(r, extractable));
  });
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
