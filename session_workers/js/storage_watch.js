// wa-gateway's storage watch (the `context` strategy's init script, main world, every frame, before any page
// script). It lets a save skip the capture of a page whose storage did not change since the last saved archive
// (a graceful stop of 50 clean sessions need not capture 50 MB again). It marks the page dirty on every IndexedDB
// write (IDBObjectStore put/add/delete/clear, IDBCursor update/delete, a version change, deleteDatabase) and
// counts the write transactions still open; localStorage is compared as a whole (a property assignment such as
// `localStorage.x = 1` bypasses setItem, so no method wrapper could see every write).
// `take()` (called by the worker right before each capture, and to ask whether one is needed) answers whether
// anything changed since the previous take in this document and starts the next interval. A write whose
// transaction is still open at a take keeps the page dirty for the next take too: the capture that follows may
// not see it yet. Each document has its own id: a new document (a reload) is never taken for clean.
(() => {
  const KEY = Symbol.for('wagw.storageWatch');
  let top = null;
  try {
    if (window.top !== window && window.top.location.origin === location.origin) top = window.top[KEY] || null;
  } catch (err) { /* a cross-origin parent: this frame's storage is another origin's, never captured */ }
  const localItems = () => {
    try {
      const items = [];
      for (let i = 0; i < localStorage.length; i++) items.push([localStorage.key(i), localStorage.getItem(localStorage.key(i))]);
      items.sort((a, b) => (a[0] < b[0] ? -1 : 1));
      return JSON.stringify(items);
    } catch (err) {
      return null; // storage unavailable: compares unequal to any snapshot, so the page counts as changed
    }
  };
  const watch = top || {
    doc: Math.random().toString(36).slice(2) + Date.now().toString(36),
    dirty: false,
    open: 0,
    local: localItems(),
    take() {
      const local = localItems();
      const changed = this.dirty || this.open > 0 || local === null || local !== this.local;
      if (this.open === 0) this.dirty = false;
      this.local = local;
      return { doc: this.doc, changed };
    },
  };
  if (!top) Object.defineProperty(window, KEY, { value: watch });
  const tracked = new WeakSet();
  const track = (tx) => {
    watch.dirty = true;
    if (!tx || tracked.has(tx)) return;
    tracked.add(tx);
    watch.open += 1;
    const done = () => { watch.open -= 1; };
    tx.addEventListener('complete', done, { once: true });
    tx.addEventListener('abort', done, { once: true });
  };
  const wrap = (proto, name, txOf) => {
    const native = proto && proto[name];
    if (typeof native !== 'function') return;
    const fn = {
      [name](...args) {
        try { track(txOf(this)); } catch (err) { watch.dirty = true; }
        return native.apply(this, args);
      },
    }[name];
    Object.defineProperty(fn, 'length', { value: native.length });
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: true });
  };
  const storeTx = (store) => store.transaction;
  const cursorTx = (cursor) => (cursor.source instanceof IDBIndex ? cursor.source.objectStore : cursor.source).transaction;
  if (typeof IDBObjectStore !== 'undefined') {
    for (const name of ['put', 'add', 'delete', 'clear']) wrap(IDBObjectStore.prototype, name, storeTx);
    for (const name of ['update', 'delete']) wrap(IDBCursor.prototype, name, cursorTx);
    const factory = IDBFactory.prototype;
    const open = factory.open;
    const deleteDatabase = factory.deleteDatabase;
    const openFn = {
      open(...args) {
        const request = open.apply(this, args);
        request.addEventListener('upgradeneeded', () => track(request.transaction));
        return request;
      },
    }.open;
    const deleteFn = {
      deleteDatabase(...args) {
        watch.dirty = true;
        const request = deleteDatabase.apply(this, args);
        watch.open += 1;
        let counted = true;
        const done = () => { if (counted) { counted = false; watch.open -= 1; } };
        request.addEventListener('success', done);
        request.addEventListener('error', done);
        return request;
      },
    }.deleteDatabase;
    Object.defineProperty(openFn, 'length', { value: open.length });
    Object.defineProperty(deleteFn, 'length', { value: deleteDatabase.length });
    Object.defineProperty(factory, 'open', { value: openFn, writable: true, configurable: true, enumerable: true });
    Object.defineProperty(factory, 'deleteDatabase', { value: deleteFn, writable: true, configurable: true, enumerable: true });
  }
})();
