// A global `gc` that plain node would not have (see hideGlobalGc).

/**
 * Takes away the `gc` that V8 installs on a context made while --expose-gc was set (dsm sets it for a moment
 * around each collection it asks for). V8 installs it as a global function declaration: writable but not
 * configurable, so `delete` throws in strict code (session 26: the worker died with "Cannot delete property
 * 'gc'"; it had been deleted that way since session 22, on a race rare enough to pass the suite). Deleted where
 * it can be, else set to undefined: `typeof gc` and `globalThis.gc` then read as under plain node.
 */
export function hideGlobalGc(global: object): void {
  const descriptor = Object.getOwnPropertyDescriptor(global, 'gc');
  if (descriptor === undefined || typeof descriptor.value !== 'function') return;
  if (descriptor.configurable === true) Reflect.deleteProperty(global, 'gc');
  else if (descriptor.writable === true) Reflect.set(global, 'gc', undefined);
}
