// What a worker threw, across nodes: a remote worker's 'error' event must hand
// its parent what node's own worker would (lib/internal/error_serdes.js): an
// error made from the nearest built-in error constructor on the thrown
// object's prototype chain (a RangeError stays a RangeError; a subclass of
// Error arrives as an Error with the subclass's own name), with every
// non-function property found on the chain (message, stack, name, code,
// errors, cause and the program's own fields) defined as the original's
// were; and a thrown value that is not an error (a number, a plain object)
// as its structured clone. Session 10: a RangeError thrown on another node
// arrived as an Error, and `throw 42` as the string '42'.

import { deserializeValue, serializeValue, type BufferRanges } from './clone.js';

/** The constructors node's own worker error serialization keeps (AggregateError is not among them: it arrives as an Error). */
const errorConstructors: Record<string, ErrorConstructor> = {
  Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
};

/** A thrown error as it crosses: the constructor's name and each property's descriptor (values cloned or, failing that, left out). */
interface ErrorParts {
  dsmErrorParts: true;
  constructorName: string;
  properties: Record<string, { value: unknown; writable: boolean; enumerable: boolean; configurable: boolean }>;
}

/**
 * A thrown value that is no error, as its clone, or as text when it cannot be cloned (a function); a symbol as its
 * description (`symbol`): node's parent gets Symbol.for(description) (session 46, users19: a string before).
 */
interface ThrownValue { dsmThrownValue: true; value: unknown; text: boolean; symbol?: true }

/** The nearest built-in error constructor's name on the chain of an object whose tag is Error, else null. */
function errorConstructorName(value: object): string | null {
  if (Object.prototype.toString.call(value) !== '[object Error]') return null;
  for (let current: object | null = value; current !== null; current = Object.getPrototypeOf(current) as object | null) {
    const constructor = Object.getOwnPropertyDescriptor(current, 'constructor')?.value as { name?: unknown } | undefined;
    const name = constructor === undefined ? undefined : Object.getOwnPropertyDescriptor(constructor, 'name')?.value;
    if (typeof name === 'string' && Object.hasOwn(errorConstructors, name)) return name;
  }
  return null;
}

/** Whether `value` survives a structured clone (tried on its own, so one bad property does not lose the others). */
function cloneable(value: unknown, ranges: BufferRanges): boolean {
  try {
    serializeValue(value, ranges);
    return true;
  } catch {
    return false;
  }
}

/**
 * The parts of a thrown value to send (serializeValue them), from the node
 * whose worker threw it. `rewrite` may change an error's message (and its
 * stack, where the message appears) before it goes.
 */
export function thrownParts(thrown: unknown, ranges: BufferRanges, rewrite?: (message: string, code: unknown) => string): ErrorParts | ThrownValue {
  const constructorName = typeof thrown === 'object' && thrown !== null ? errorConstructorName(thrown) : null;
  if (constructorName === null) {
    if (typeof thrown === 'symbol') return { dsmThrownValue: true, value: thrown.description ?? '', text: true, symbol: true };
    if (cloneable(thrown, ranges)) return { dsmThrownValue: true, value: thrown, text: false };
    return { dsmThrownValue: true, value: String(thrown), text: true };
  }
  const error = thrown as Record<string, unknown>;
  const properties: ErrorParts['properties'] = {};
  // Nearest definition wins: the chain from its far end, each level overwriting the one above it.
  const chain: object[] = [];
  for (let current: object | null = error; current !== null; current = Object.getPrototypeOf(current) as object | null) chain.unshift(current);
  for (const level of chain) {
    for (const key of Object.getOwnPropertyNames(level)) {
      if (key === '__proto__' || key === 'constructor') continue;
      let descriptor: PropertyDescriptor | undefined;
      try { descriptor = Object.getOwnPropertyDescriptor(level, key); } catch { continue; }
      if (descriptor === undefined) continue;
      let value = descriptor.value;
      if (descriptor.get !== undefined) {
        try { value = descriptor.get.call(error); } catch { continue; }
      } else if (!('value' in descriptor)) {
        continue;
      }
      if (typeof value === 'function') continue;
      if (key === 'cause' && typeof value === 'object' && value !== null && errorConstructorName(value) !== null) {
        value = thrownParts(value, ranges);
      } else if (!cloneable(value, ranges)) {
        continue;
      }
      properties[key] = { value, writable: descriptor.writable ?? true, enumerable: descriptor.enumerable ?? false, configurable: descriptor.configurable ?? true };
    }
  }
  if (rewrite !== undefined && properties.message !== undefined) {
    const message = String(properties.message.value);
    const rewritten = rewrite(message, properties.code?.value);
    if (rewritten !== message) {
      properties.message.value = rewritten;
      if (properties.stack !== undefined) properties.stack.value = String(properties.stack.value).replace(message, rewritten);
    }
  }
  return { dsmErrorParts: true, constructorName, properties };
}

/** The value the parent's 'error' event carries, from the parts thrownParts made (after deserializeValue). */
export function thrownFromParts(parts: unknown): unknown {
  if (typeof parts !== 'object' || parts === null) return parts;
  if ((parts as ThrownValue).dsmThrownValue === true) {
    const thrown = parts as ThrownValue;
    return thrown.symbol === true ? Symbol.for(String(thrown.value)) : thrown.value;
  }
  if ((parts as ErrorParts).dsmErrorParts !== true) return parts;
  const { constructorName, properties } = parts as ErrorParts;
  const constructor = errorConstructors[constructorName] ?? Error;
  const cause = properties.cause;
  if (cause !== undefined) cause.value = thrownFromParts(cause.value);
  // As node's own: tagged Error (Object.prototype.toString, util.inspect), though made by Object.create.
  const tagged = { ...properties, [Symbol.toStringTag]: { value: 'Error', writable: false, enumerable: false, configurable: true } };
  return Object.create(constructor.prototype as object, tagged) as Error;
}

/** Serializes what a worker threw for its parent on another node. */
export function serializeThrown(thrown: unknown, ranges: BufferRanges, rewrite?: (message: string, code: unknown) => string): Uint8Array {
  return serializeValue(thrownParts(thrown, ranges, rewrite), ranges);
}

/** The thrown value again, on the parent's node. */
export function deserializeThrown(bytes: Uint8Array, ranges: BufferRanges): unknown {
  return thrownFromParts(deserializeValue(bytes, ranges));
}
