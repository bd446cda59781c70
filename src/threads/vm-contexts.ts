// Contexts a program makes with node:vm get dsm's Atomics and SharedArrayBuffer.
//
// A context is a realm of its own, with its own intrinsics: its `Atomics`
// would run V8's operations on this node's copy of a page, and its
// `SharedArrayBuffer` would make memory local to this thread's node (users19:
// two workers' 1000 adds each in a context made 1000 on 2 nodes). So every
// context this thread makes is covered once, before any of its code runs:
//
// - its own Atomics object keeps its identity (and its prototype, its
//   Symbol.toStringTag), and the functions dsm replaced on this thread's
//   Atomics become, on it, functions of the context's realm that call dsm's:
//   an error they throw is the context's TypeError or RangeError, and
//   waitAsync answers with the context's objects and promise;
// - its global `SharedArrayBuffer` becomes dsm's constructor for that realm
//   (its buffers are dsm memory, of the context's SharedArrayBuffer.prototype,
//   whose `constructor` it is). On a context whose global is a sandbox object
//   the binding is defined on the context's global (Node's interceptors copy
//   it to the sandbox, which it is then deleted from: the sandbox shows no new
//   property, and a sandbox property of that name, own or inherited, still
//   comes first, as under node).
//
// A context is made by vm.createContext (the exported function), or by
// runInNewContext (vm's, or a Script's), which call vm's internal
// createContext and then run the code through Script.prototype.runInContext:
// both are covered here (and vm.runInNewContext's sandbox when its code does
// not compile), so a context is covered before the program can run code in it
// (compileFunction's parsingContext is one of these contexts). A sandbox that supplies its own `Atomics` keeps it; the context's own is then
// out of reach (docs/LIMITS.md, "Known edges").

import vm from 'node:vm';
import type { SharedArrayBufferRealm } from './shared-array-buffer.js';

export interface VmContextsConfig {
  /** This thread's Atomics' own properties before dsm replaced any. */
  nativeAtomics: ReadonlyMap<string, unknown>;
  /** dsm's SharedArrayBuffer constructor for another realm. */
  sharedArrayBufferFor(realm: SharedArrayBufferRealm): SharedArrayBufferConstructor;
}

/** What the probe answers, read in the context (src below). */
interface Realm {
  global: object;
  atomics: unknown;
  sharedArrayBuffer: unknown;
  /** An object and a function made by literals: their prototypes are the realm's. */
  object: object;
  func: object;
  typeError: object;
  rangeError: object;
  method(name: string, op: (...args: unknown[]) => unknown, adopt: (error: unknown) => unknown): (...args: unknown[]) => unknown;
  waitAsync(op: (...args: unknown[]) => unknown, adopt: (error: unknown) => unknown): (...args: unknown[]) => unknown;
}

// Run in each new context before its program's code: its global (`this` of a
// script), what its code sees as `Atomics` and `SharedArrayBuffer` (a sandbox
// first), its intrinsic prototypes (from literals and errors the engine makes,
// not from its global bindings, which a sandbox may shadow), and makers of its
// realm's functions around dsm's. Four parameters, as the longest of Atomics'
// functions takes: one it is not given is undefined to dsm's as to V8's.
const probeSource = `(function (global) {
  'use strict';
  var typeError, rangeError;
  try { null.x; } catch (error) { typeError = error; }
  try { (1).toFixed(-1); } catch (error) { rangeError = error; }
  var RealmPromise = (async function () {})().constructor;
  return {
    global: global,
    atomics: global.Atomics,
    sharedArrayBuffer: global.SharedArrayBuffer,
    object: {},
    func: function () {},
    typeError: typeError,
    rangeError: rangeError,
    method: function (name, op, adopt) {
      return { [name](array, index, value, other) {
        try { return op(array, index, value, other); } catch (error) { throw adopt(error); }
      } }[name];
    },
    waitAsync: function (op, adopt) {
      return { waitAsync(array, index, value, timeout) {
        var result;
        try { result = op(array, index, value, timeout); } catch (error) { throw adopt(error); }
        if (!result.async) return { async: false, value: result.value };
        var settled = result.value;
        return { async: true, value: new RealmPromise(function (resolve, reject) { settled.then(resolve, reject); }) };
      } }.waitAsync;
    },
  };
})(this)`;

const nativeSharedArrayBufferSource = 'function SharedArrayBuffer() { [native code] }';

export function installVmContexts(config: VmContextsConfig): void {
  const atomics = Atomics as unknown as Record<string, unknown>;
  // The functions dsm replaced on this thread's Atomics (on one node: wait and waitAsync; on several, all but isLockFree).
  const replaced = [...config.nativeAtomics].filter(([name, native]) => typeof native === 'function' && atomics[name] !== native).map(([name]) => name);
  const covered = new WeakSet<object>();
  const patchedAtomics = new WeakSet<object>();
  const dsmConstructors = new WeakMap<object, SharedArrayBufferConstructor>();
  const { toString } = Function.prototype;
  const objectToString = Object.prototype.toString;
  const script = vm.Script as unknown as { prototype: Record<string, unknown> };
  const runInContext = script.prototype.runInContext as (this: vm.Script, context: vm.Context, options?: vm.RunningScriptOptions) => unknown;
  let probe: vm.Script | null = null;

  function cover(context: object): void {
    covered.add(context);
    probe ??= new vm.Script(probeSource, { filename: 'dsm:vm-context' });
    const realm = runInContext.call(probe, context) as Realm;
    const typeErrorPrototype = Object.getPrototypeOf(realm.typeError) as object;
    const rangeErrorPrototype = Object.getPrototypeOf(realm.rangeError) as object;
    // dsm's functions (and the native ones they fall back to) throw this realm's errors: the context's instead.
    const adopt = (error: unknown): unknown => {
      if (typeof error === 'object' && error !== null) {
        const prototype = Object.getPrototypeOf(error) as object | null;
        if (prototype === TypeError.prototype) Object.setPrototypeOf(error, typeErrorPrototype);
        else if (prototype === RangeError.prototype) Object.setPrototypeOf(error, rangeErrorPrototype);
      }
      return error;
    };
    const atomicsOfRealm = realm.atomics as Record<string, unknown> | undefined;
    if (typeof atomicsOfRealm === 'object' && atomicsOfRealm !== null && !patchedAtomics.has(atomicsOfRealm)
      && objectToString.call(atomicsOfRealm) === '[object Atomics]' && Object.getPrototypeOf(atomicsOfRealm) === Object.getPrototypeOf(realm.object)) {
      patchedAtomics.add(atomicsOfRealm);
      for (const name of replaced) {
        const own = Object.getOwnPropertyDescriptor(atomicsOfRealm, name);
        if (own === undefined || !('value' in own) || typeof own.value !== 'function') continue;
        const op = atomics[name] as (...args: unknown[]) => unknown;
        const method = name === 'waitAsync' ? realm.waitAsync(op, adopt) : realm.method(name, op, adopt);
        Object.defineProperty(method, 'length', { value: own.value.length, writable: false, enumerable: false, configurable: true });
        Object.defineProperty(atomicsOfRealm, name, { ...own, value: method });
      }
    }
    const native = realm.sharedArrayBuffer as SharedArrayBufferConstructor | undefined;
    if (typeof native === 'function' && !dsmConstructors.has(native) && Object.getPrototypeOf(native) === Object.getPrototypeOf(realm.func)
      && toString.call(native) === nativeSharedArrayBufferSource) {
      const ctor = config.sharedArrayBufferFor({ Native: native, adopt });
      dsmConstructors.set(native, ctor);
      dsmConstructors.set(ctor, ctor);
      Object.defineProperty(native.prototype, 'constructor', { value: ctor, writable: true, configurable: true, enumerable: false });
      // On a sandbox's context the definition reaches the sandbox too (Node's interceptor), and is taken off it:
      // the sandbox has no property of that name (else its value was what the context saw, not the native one).
      const sandbox = realm.global === context ? null : context;
      const descriptor = { value: ctor, writable: true, configurable: true, enumerable: false };
      try {
        Object.defineProperty(realm.global, 'SharedArrayBuffer', descriptor);
      } finally {
        if (sandbox !== null && Object.prototype.hasOwnProperty.call(sandbox, 'SharedArrayBuffer')) Reflect.deleteProperty(sandbox, 'SharedArrayBuffer');
      }
    }
  }

  /** Covers `context` if it is a context not covered yet (anything else is left to vm's own checks). */
  function coverIfNew(context: unknown): void {
    if (typeof context !== 'object' || context === null || covered.has(context)) return;
    if (!vm.isContext(context)) return;
    cover(context);
  }

  const exports = vm as unknown as Record<string, unknown>;
  const createContext = exports.createContext as (...args: unknown[]) => object;
  exports.createContext = named(createContext, { createContext(this: unknown, ...args: unknown[]) {
    const context = Reflect.apply(createContext, this, args) as object;
    coverIfNew(context);
    return context;
  } }.createContext);
  // vm.runInNewContext makes its context before it compiles: code that does not compile leaves a context no code ran in.
  const runInNewContext = exports.runInNewContext as (...args: unknown[]) => unknown;
  exports.runInNewContext = named(runInNewContext, { runInNewContext(this: unknown, ...args: unknown[]) {
    try {
      return Reflect.apply(runInNewContext, this, args);
    } finally {
      coverIfNew(args[1]);
    }
  } }.runInNewContext);
  // runInNewContext (vm's and a Script's) runs the code in its new context through this method.
  script.prototype.runInContext = named(runInContext, { runInContext(this: unknown, ...args: unknown[]) {
    coverIfNew(args[0]);
    return Reflect.apply(runInContext, this, args);
  } }.runInContext);
}

/** `wrapper` (a method of the same name: so stack frames name it) with the length of the function it stands for. */
function named<F extends (...args: never[]) => unknown>(original: (...args: never[]) => unknown, wrapper: F): F {
  Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
  return wrapper;
}
